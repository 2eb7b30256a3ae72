// Package engine is freqkv's WebGPU compute runtime: it opens a device, owns
// buffers and tensors, compiles and caches compute pipelines, and records
// many dispatches into one submit per step.
package engine

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/cogentcore/webgpu/wgpu"
)

// ErrNoAdapter is returned when no WebGPU adapter can be found.
var ErrNoAdapter = errors.New("no WebGPU adapter found: install a GPU driver, or Mesa's CPU Vulkan driver with `apt-get install -y mesa-vulkan-drivers libvulkan1`")

// AdapterEnv names the environment variable that selects an adapter by index or name.
const AdapterEnv = "FREQKV_ADAPTER"

// AdapterInfo describes one adapter the system offers.
type AdapterInfo struct {
	Index        int
	Name         string
	Vendor       string
	Driver       string
	Type         string // discrete, integrated, cpu, ...
	Backend      string // Vulkan, Metal, D3D12, ...
	ShaderF16    bool
	Timestamps   bool
	Limits       wgpu.Limits
	isCPU        bool
	isDiscrete   bool
	isIntegrated bool
}

// Options selects and configures a device.
type Options struct {
	// Adapter picks an adapter by index ("0") or by a case-insensitive
	// substring of its name ("llvmpipe"). Empty: $FREQKV_ADAPTER, then the
	// best adapter (discrete, integrated, other, CPU).
	Adapter string
	// NoF16 disables shader-f16 even when the adapter offers it.
	NoF16 bool
}

// Device is an open WebGPU device with the limits and features freqkv uses.
type Device struct {
	Info       AdapterInfo
	Limits     wgpu.Limits // the limits the device was created with
	ShaderF16  bool
	Timestamps bool

	instance *wgpu.Instance
	adapter  *wgpu.Adapter
	dev      *wgpu.Device
	queue    *wgpu.Queue

	mu        sync.Mutex
	kernels   map[string]*Kernel
	compileNS int64 // total pipeline creation time, for reporting

	allocated atomic.Int64 // bytes currently allocated in buffers
	nextID    atomic.Uint64
	params    *Buffer // uniform arena shared by recorders, see Recorder
}

func describe(i int, a *wgpu.Adapter) AdapterInfo {
	info := a.GetInfo()
	limits := a.GetLimits().Limits
	name := info.Name
	// Some drivers report the device id ("0x0") as the name and the real
	// name (e.g. "llvmpipe (LLVM 15.0.6, 256 bits)") as the description.
	if (name == "" || strings.HasPrefix(name, "0x")) && info.DriverDescription != "" {
		name = info.DriverDescription
	}
	ai := AdapterInfo{
		Index:      i,
		Name:       name,
		Vendor:     info.VendorName,
		Driver:     info.DriverDescription,
		Type:       info.AdapterType.String(),
		Backend:    info.BackendType.String(),
		ShaderF16:  a.HasFeature(wgpu.FeatureNameShaderF16),
		Timestamps: a.HasFeature(wgpu.FeatureNameTimestampQuery),
		Limits:     limits,
	}
	ai.isCPU = info.AdapterType == wgpu.AdapterTypeCPU || strings.Contains(strings.ToLower(name), "llvmpipe")
	ai.isDiscrete = info.AdapterType == wgpu.AdapterTypeDiscreteGPU
	ai.isIntegrated = info.AdapterType == wgpu.AdapterTypeIntegratedGPU
	return ai
}

// IsCPU reports whether the adapter is a software rasteriser such as lavapipe.
func (a AdapterInfo) IsCPU() bool { return a.isCPU }

func (a AdapterInfo) rank() int {
	switch {
	case a.isDiscrete:
		return 0
	case a.isIntegrated:
		return 1
	case a.isCPU:
		return 3
	default:
		return 2
	}
}

func enumerate(inst *wgpu.Instance) ([]*wgpu.Adapter, []AdapterInfo) {
	adapters := inst.EnumerateAdapters(nil)
	infos := make([]AdapterInfo, 0, len(adapters))
	kept := adapters[:0]
	for _, a := range adapters {
		info := describe(len(kept), a)
		// wgpu also lists GL adapters; compute needs Vulkan, Metal or D3D12.
		if info.Backend == wgpu.BackendTypeOpenGL.String() || info.Backend == wgpu.BackendTypeOpenGLES.String() {
			a.Release()
			continue
		}
		kept = append(kept, a)
		infos = append(infos, info)
	}
	return kept, infos
}

// Adapters lists the adapters available for compute, best first.
func Adapters() ([]AdapterInfo, error) {
	quietLoader()
	inst := newInstance()
	if inst == nil {
		return nil, ErrNoAdapter
	}
	defer inst.Release()
	adapters, infos := enumerate(inst)
	for _, a := range adapters {
		a.Release()
	}
	if len(infos) == 0 {
		return nil, ErrNoAdapter
	}
	return infos, nil
}

// Best is the index of the adapter Open picks without a selector.
func Best(infos []AdapterInfo) int {
	i, _ := choose(infos, "")
	return i
}

// choose picks an adapter by selector (index or name substring) or by rank.
func choose(infos []AdapterInfo, selector string) (int, error) {
	if selector == "" {
		best := 0
		for i, in := range infos {
			if in.rank() < infos[best].rank() {
				best = i
			}
		}
		return best, nil
	}
	if i, err := strconv.Atoi(selector); err == nil {
		if i < 0 || i >= len(infos) {
			return 0, fmt.Errorf("adapter index %d out of range: %d adapters (see `freqkv devices`)", i, len(infos))
		}
		return i, nil
	}
	want := strings.ToLower(selector)
	for i, in := range infos {
		if strings.Contains(strings.ToLower(in.Name), want) {
			return i, nil
		}
	}
	names := make([]string, len(infos))
	for i, in := range infos {
		names[i] = fmt.Sprintf("%d:%q", i, in.Name)
	}
	return 0, fmt.Errorf("no adapter matches %q; available: %s (see `freqkv devices`)", selector, strings.Join(names, ", "))
}

// Open creates a device on the chosen adapter, requesting the adapter's own
// limits for what the engine needs and shader-f16 and timestamps when offered.
func Open(opts Options) (*Device, error) {
	quietLoader()
	inst := newInstance()
	if inst == nil {
		return nil, ErrNoAdapter
	}
	adapters, infos := enumerate(inst)
	if len(adapters) == 0 {
		inst.Release()
		return nil, ErrNoAdapter
	}
	selector := opts.Adapter
	if selector == "" {
		selector = os.Getenv(AdapterEnv)
	}
	idx, err := choose(infos, selector)
	if err != nil {
		inst.Release()
		return nil, err
	}
	for i, a := range adapters {
		if i != idx {
			a.Release()
		}
	}
	adapter, info := adapters[idx], infos[idx]

	// Requesting the adapter's whole limits struct makes device creation fail
	// intermittently on lavapipe (docs/webgpu.md): start from the defaults
	// and raise only what compute needs.
	al := info.Limits
	limits := wgpu.DefaultLimits()
	limits.MaxStorageBufferBindingSize = al.MaxStorageBufferBindingSize
	limits.MaxUniformBufferBindingSize = max(limits.MaxUniformBufferBindingSize, al.MaxUniformBufferBindingSize)
	limits.MaxBufferSize = al.MaxBufferSize
	limits.MaxComputeWorkgroupStorageSize = al.MaxComputeWorkgroupStorageSize
	limits.MaxComputeInvocationsPerWorkgroup = al.MaxComputeInvocationsPerWorkgroup
	limits.MaxComputeWorkgroupSizeX = al.MaxComputeWorkgroupSizeX
	limits.MaxComputeWorkgroupSizeY = al.MaxComputeWorkgroupSizeY
	limits.MaxComputeWorkgroupSizeZ = al.MaxComputeWorkgroupSizeZ
	limits.MaxComputeWorkgroupsPerDimension = al.MaxComputeWorkgroupsPerDimension
	limits.MaxStorageBuffersPerShaderStage = al.MaxStorageBuffersPerShaderStage
	limits.MaxDynamicUniformBuffersPerPipelineLayout = al.MaxDynamicUniformBuffersPerPipelineLayout

	var features []wgpu.FeatureName
	f16 := info.ShaderF16 && !opts.NoF16
	if f16 {
		features = append(features, wgpu.FeatureNameShaderF16)
	}
	if info.Timestamps {
		features = append(features, wgpu.FeatureNameTimestampQuery)
	}
	d := &Device{Info: info, ShaderF16: f16, Timestamps: info.Timestamps, instance: inst, adapter: adapter, kernels: map[string]*Kernel{}}
	var dev *wgpu.Device
	for attempt := 0; attempt < 3; attempt++ {
		dev, err = adapter.RequestDevice(&wgpu.DeviceDescriptor{
			Label:            "freqkv",
			RequiredFeatures: features,
			RequiredLimits:   &wgpu.RequiredLimits{Limits: limits},
			// No DeviceLostCallback: the binding passes it to C in a way
			// that cgocheck rejects. Lost devices surface as operation errors.
		})
		if err == nil {
			break
		}
	}
	if err != nil {
		adapter.Release()
		inst.Release()
		return nil, fmt.Errorf("create device on %q: %w", info.Name, err)
	}
	d.dev = dev
	d.queue = dev.GetQueue()
	d.Limits = dev.GetLimits().Limits
	return d, nil
}

// Close releases every pipeline, the device and the instance.
func (d *Device) Close() {
	if d == nil || d.dev == nil {
		return
	}
	d.mu.Lock()
	for _, k := range d.kernels {
		k.release()
	}
	d.kernels = nil
	d.mu.Unlock()
	d.queue.Release()
	d.dev.Release()
	d.adapter.Release()
	d.instance.Release()
	d.dev = nil
}

// MaxBinding is the largest storage-buffer range one binding may cover.
func (d *Device) MaxBinding() uint64 { return d.Limits.MaxStorageBufferBindingSize }

// MaxUniformBinding is the largest range one uniform binding may cover.
func (d *Device) MaxUniformBinding() uint64 { return d.Limits.MaxUniformBufferBindingSize }

// AllocatedBytes reports the bytes currently held in device buffers.
func (d *Device) AllocatedBytes() int64 { return d.allocated.Load() }

// newInstance creates a WebGPU instance on the compute-capable backends
// only: the GL backend would bring up a second (idle) driver instance, and
// its adapters can't run our kernels anyway.
func newInstance() *wgpu.Instance {
	return wgpu.CreateInstance(&wgpu.InstanceDescriptor{Backends: wgpu.InstanceBackendPrimary})
}

// quietLoader keeps the Vulkan loader's "XDG_RUNTIME_DIR is invalid" lines
// (harmless on headless machines) and wgpu's warnings off stderr.
func quietLoader() {
	if os.Getenv("XDG_RUNTIME_DIR") == "" {
		os.Setenv("XDG_RUNTIME_DIR", os.TempDir())
	}
	wgpu.SetLogLevel(wgpu.LogLevelError)
}
