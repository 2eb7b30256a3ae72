package main

import (
	"encoding/json"
	"fmt"

	"github.com/freqkv/freqkv/engine"
)

func init() {
	register(command{name: "devices", summary: "list the GPU adapters WebGPU offers, with their limits", run: runDevices})
}

func runDevices(args []string) error {
	fs := newFlags("devices", "[--json]", "Lists the adapters freqkv can run on, best first (the default choice is marked *).")
	asJSON := fs.Bool("json", false, "print JSON")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("unexpected argument %q", fs.Arg(0))
	}
	infos, err := engine.Adapters()
	if err != nil {
		return err
	}
	best := engine.Best(infos)
	if *asJSON {
		var list []map[string]any
		for i, a := range infos {
			list = append(list, map[string]any{
				"index": a.Index, "name": a.Name, "vendor": a.Vendor, "driver": a.Driver, "type": a.Type, "backend": a.Backend,
				"default": i == best, "shader_f16": a.ShaderF16, "timestamp_query": a.Timestamps,
				"limits": map[string]any{
					"max_storage_buffer_binding_size":       a.Limits.MaxStorageBufferBindingSize,
					"max_buffer_size":                       a.Limits.MaxBufferSize,
					"max_compute_workgroup_storage_size":    a.Limits.MaxComputeWorkgroupStorageSize,
					"max_compute_invocations_per_workgroup": a.Limits.MaxComputeInvocationsPerWorkgroup,
					"max_compute_workgroups_per_dimension":  a.Limits.MaxComputeWorkgroupsPerDimension,
					"max_storage_buffers_per_shader_stage":  a.Limits.MaxStorageBuffersPerShaderStage,
					"min_storage_buffer_offset_alignment":   a.Limits.MinStorageBufferOffsetAlignment,
				},
			})
		}
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(list)
	}
	for i, a := range infos {
		mark := " "
		if i == best {
			mark = "*"
		}
		fmt.Fprintf(stdout, "%s %d: %s (%s, %s, vendor %s)\n", mark, a.Index, a.Name, a.Type, a.Backend, a.Vendor)
		fmt.Fprintf(stdout, "     shader-f16: %v  timestamps: %v\n", a.ShaderF16, a.Timestamps)
		l := a.Limits
		fmt.Fprintf(stdout, "     max storage binding: %s  max buffer: %s  workgroup storage: %s\n", humanBytes(int64(l.MaxStorageBufferBindingSize)), humanBytes(int64(l.MaxBufferSize)), humanBytes(int64(l.MaxComputeWorkgroupStorageSize)))
		fmt.Fprintf(stdout, "     invocations/workgroup: %d  workgroups/dimension: %d  storage buffers/stage: %d\n", l.MaxComputeInvocationsPerWorkgroup, l.MaxComputeWorkgroupsPerDimension, l.MaxStorageBuffersPerShaderStage)
	}
	return nil
}
