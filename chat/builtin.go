package chat

// The built-in templates, for model files without tokenizer.chat_template.
// Each is its model family's Hugging Face template (tokenizer_config.json)
// written out, so a conversation renders to the string the model card
// documents; where a family has several, the comment says which.
var builtinTemplates = map[string]string{
	// meta-llama/Llama-2-7b-chat-hf: the system prompt goes inside the
	// first [INST] block between <<SYS>> markers.
	"llama-2": `{% if messages[0]['role'] == 'system' %}{% set loop_messages = messages[1:] %}{% set system_message = messages[0]['content'] %}{% else %}{% set loop_messages = messages %}{% set system_message = false %}{% endif %}` +
		`{% for message in loop_messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}` +
		`{% if loop.index0 == 0 and system_message != false %}{% set content = '<<SYS>>\n' + system_message + '\n<</SYS>>\n\n' + message['content'] %}{% else %}{% set content = message['content'] %}{% endif %}` +
		`{% if message['role'] == 'user' %}{{ bos_token + '[INST] ' + content.strip() + ' [/INST]' }}{% elif message['role'] == 'assistant' %}{{ ' ' + content.strip() + ' ' + eos_token }}{% endif %}{% endfor %}`,

	// meta-llama/Meta-Llama-3-8B-Instruct.
	"llama-3": `{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n' + message['content'] | trim + '<|eot_id|>' %}{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}`,

	// ChatML (Qwen, OpenHermes, ...).
	"chatml": `{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}`,

	// mistralai/Mistral-7B-Instruct-v0.3 without tool calls: the system
	// prompt is put before the last user message.
	"mistral": `{% if messages[0]['role'] == 'system' %}{% set system_message = messages[0]['content'] %}{% set loop_messages = messages[1:] %}{% else %}{% set loop_messages = messages %}{% endif %}` +
		`{% for message in loop_messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}{{ raise_exception('After the optional system message, conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}{% endfor %}` +
		`{{ bos_token }}{% for message in loop_messages %}{% if message['role'] == 'user' %}{% if loop.last and system_message is defined %}{{ '[INST] ' + system_message + '\n\n' + message['content'] + '[/INST]' }}{% else %}{{ '[INST] ' + message['content'] + '[/INST]' }}{% endif %}` +
		`{% elif message['role'] == 'assistant' %}{{ ' ' + message['content'] | trim + eos_token }}{% else %}{{ raise_exception('Only user, assistant and system roles are supported') }}{% endif %}{% endfor %}`,

	// microsoft/Phi-3-mini-4k-instruct.
	"phi-3": `{% for message in messages %}{% if message['role'] == 'system' %}{{ '<|system|>\n' + message['content'] + '<|end|>\n' }}{% elif message['role'] == 'user' %}{{ '<|user|>\n' + message['content'] + '<|end|>\n' }}{% elif message['role'] == 'assistant' %}{{ '<|assistant|>\n' + message['content'] + '<|end|>\n' }}{% endif %}{% endfor %}{% if add_generation_prompt %}{{ '<|assistant|>\n' }}{% else %}{{ eos_token }}{% endif %}`,

	// google/gemma-3-*-it: Gemma has no system role; the system prompt
	// opens the first user turn.
	"gemma": `{{ bos_token }}{% if messages[0]['role'] == 'system' %}{% set first_user_prefix = messages[0]['content'] + '\n\n' %}{% set loop_messages = messages[1:] %}{% else %}{% set first_user_prefix = '' %}{% set loop_messages = messages %}{% endif %}` +
		`{% for message in loop_messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}` +
		`{% if message['role'] == 'assistant' %}{% set role = 'model' %}{% else %}{% set role = message['role'] %}{% endif %}` +
		`{{ '<start_of_turn>' + role + '\n' }}{% if loop.first %}{{ first_user_prefix }}{% endif %}{{ message['content'] | trim }}{{ '<end_of_turn>\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<start_of_turn>model\n' }}{% endif %}`,

	// plain is for story models without a chat format (the embedded
	// stories260K): no role markers, the messages are one text joined by
	// spaces, so a chat is writing a story together: the system prompt and
	// each user turn are the next lines of the story, and the model
	// continues it.
	"plain": `{{ bos_token }}{% for message in messages %}{% if not loop.first %}{{ ' ' }}{% endif %}{{ message['content'] | trim }}{% endfor %}`,
}

// endOfTurn lists the texts of the tokens that end an assistant turn in
// the built-in formats (besides the vocabulary's EOS).
var endOfTurn = []string{"<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>", "</s>"}
