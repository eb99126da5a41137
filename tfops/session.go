package tfops

import (
	"fmt"
	"strings"

	tf "github.com/wamuir/graft/tensorflow"
	corepb "github.com/wamuir/graft/tensorflow/core/protobuf/for_core_protos_go_proto"
	"google.golang.org/protobuf/proto"
)

// SessionConfig chooses threads and devices for a session.
type SessionConfig struct {
	IntraOpThreads int  // threads inside one kernel; 0 lets TensorFlow pick (all cores)
	InterOpThreads int  // kernels run at once; 0 lets TensorFlow pick
	CPUOnly        bool // hide any GPU
}

// MaxThreads bounds the thread flags: TensorFlow starts every thread of its
// pools at once, each with its own stack, so a typo such as 100000 would take
// minutes and gigabytes before the first step instead of failing.
const MaxThreads = 1024

// CheckThreads validates a thread-count flag: 0 (TensorFlow picks, one per
// core) up to MaxThreads.
func CheckThreads(flag string, n int) error {
	if n < 0 || n > MaxThreads {
		return fmt.Errorf("%s %d: must be 0 (one per core) up to %d", flag, n, MaxThreads)
	}
	return nil
}

// NewSession starts a session on g. Ops placed on a device without a kernel for
// them fall back to the CPU (soft placement), as in Keras.
func NewSession(g *tf.Graph, cfg SessionConfig) (*tf.Session, error) {
	opts, err := cfg.options()
	if err != nil {
		return nil, err
	}
	sess, err := tf.NewSession(g, opts)
	if err != nil {
		return nil, fmt.Errorf("start TensorFlow session: %w", err)
	}
	return sess, nil
}

// options encodes cfg as the session options the C API takes.
func (cfg SessionConfig) options() (*tf.SessionOptions, error) {
	if err := CheckThreads("intra-op threads", cfg.IntraOpThreads); err != nil {
		return nil, err
	}
	if err := CheckThreads("inter-op threads", cfg.InterOpThreads); err != nil {
		return nil, err
	}
	config := &corepb.ConfigProto{
		IntraOpParallelismThreads: int32(cfg.IntraOpThreads),
		InterOpParallelismThreads: int32(cfg.InterOpThreads),
		AllowSoftPlacement:        true,
	}
	if cfg.CPUOnly {
		config.DeviceCount = map[string]int32{"GPU": 0}
	}
	raw, err := proto.Marshal(config)
	if err != nil {
		return nil, fmt.Errorf("encode session config: %w", err)
	}
	return &tf.SessionOptions{Config: raw}, nil
}

// DeviceName turns the --device flag ("cpu", "gpu", "gpu:1") into a TensorFlow
// device name ("/device:CPU:0", "/device:GPU:0", "/device:GPU:1").
func DeviceName(flag string) (string, error) {
	kind, index, found := strings.Cut(strings.ToLower(strings.TrimSpace(flag)), ":")
	if !found {
		index = "0"
	}
	for _, c := range index {
		if c < '0' || c > '9' || len(index) > 3 {
			return "", fmt.Errorf("device %q: the index after ':' must be a small number, as in gpu:0", flag)
		}
	}
	switch kind {
	case "cpu":
		return "/device:CPU:" + index, nil
	case "gpu":
		return "/device:GPU:" + index, nil
	}
	return "", fmt.Errorf("unknown device %q; use cpu, gpu or gpu:N", flag)
}

// CheckDevice fails unless sess sees device, listing the devices it does see.
func CheckDevice(sess *tf.Session, device string) error {
	devices, err := sess.ListDevices()
	if err != nil {
		return fmt.Errorf("list devices: %w", err)
	}
	var seen []string
	for _, d := range devices {
		if shortDeviceName(d.Name) == device {
			return nil
		}
		seen = append(seen, fmt.Sprintf("%s (%s)", shortDeviceName(d.Name), d.Type))
	}
	hint := ""
	if strings.Contains(device, "GPU") {
		hint = "; is this libtensorflow built with CUDA (scripts/install-libtensorflow.sh --gpu) and is the GPU driver visible (nvidia-smi)?"
	}
	return fmt.Errorf("device %s is not visible to libtensorflow, which sees only %s%s", device, strings.Join(seen, ", "), hint)
}

// shortDeviceName drops the "/job:localhost/replica:0/task:0" prefix.
func shortDeviceName(name string) string {
	if i := strings.Index(name, "/device:"); i >= 0 {
		return name[i:]
	}
	return name
}
