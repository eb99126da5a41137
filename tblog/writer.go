// Package tblog writes TensorBoard event files: Event protos framed as
// TFRecords with masked CRC32C checksums, the format TensorFlow's own summary
// writers produce, so TensorBoard reads a mnistgan run as it reads a Keras one.
//
// It computes nothing: scalars are values a training step already fetched,
// images are PNGs already encoded, and histograms arrive as Summary protos
// serialized by TensorFlow's HistogramSummary kernel.
package tblog

import (
	"bytes"
	"errors"
	"fmt"
	"image"
	"image/color"
	_ "image/png" // Image reads the size of PNGs
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	summarypb "github.com/wamuir/graft/tensorflow/core/framework/summary_go_proto"
	eventpb "github.com/wamuir/graft/tensorflow/core/util/event_go_proto"
	"google.golang.org/protobuf/proto"
)

// FlushInterval bounds how long an event waits in memory before it reaches
// the file, so a run watched live shows up in TensorBoard within this delay.
// TensorFlow's summary writers wait up to two minutes.
const FlushInterval = 30 * time.Second

// fileVersion makes TensorBoard honour SessionLog START events: with version 2
// a START purges the steps at and after it that an earlier session wrote.
const fileVersion = "brain.Event:2"

// filePrefix starts every event file name; TensorBoard looks for "tfevents".
const filePrefix = "events.out.tfevents."

// Scalar is one named value of a step.
type Scalar struct {
	Tag   string
	Value float32
}

// Writer appends events to a new event file. It keeps whole records in
// memory and writes them in one piece, so a file never holds half a record
// unless the process dies inside a write. The first I/O error sticks: every
// later call returns it.
type Writer struct {
	path      string
	f         *os.File
	pending   []byte
	lastFlush time.Time
	err       error
	now       func() time.Time
}

// Create starts a new event file in dir (created if need be), named to sort
// after every event file already there: TensorBoard reads a directory's files
// in name order, and a resumed run's events must come after the old ones.
func Create(dir string) (*Writer, error) {
	return create(dir, time.Now)
}

func create(dir string, now func() time.Time) (*Writer, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("create TensorBoard log directory: %w", err)
	}
	name, err := nextFileName(dir, now())
	if err != nil {
		return nil, err
	}
	path := filepath.Join(dir, name)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return nil, fmt.Errorf("create TensorBoard event file: %w", err)
	}
	w := &Writer{path: path, f: f, lastFlush: now(), now: now}
	// The first record of every file names the format, as TensorFlow's writers do.
	w.write(&eventpb.Event{
		What:           &eventpb.Event_FileVersion{FileVersion: fileVersion},
		SourceMetadata: &eventpb.SourceMetadata{Writer: "mnistgan"},
	})
	if err := w.Flush(); err != nil {
		// An empty file, or half a record, is no use to anyone.
		f.Close()
		os.Remove(path)
		return nil, err
	}
	return w, nil
}

// nextFileName returns events.out.tfevents.<seconds>.<host>.<pid>, with a
// time after that of every event file in dir (a second run in the same second
// still sorts last).
func nextFileName(dir string, now time.Time) (string, error) {
	files, err := Files(dir)
	if err != nil {
		return "", err
	}
	sec := now.Unix()
	for _, f := range files {
		stamp, _, _ := strings.Cut(strings.TrimPrefix(filepath.Base(f), filePrefix), ".")
		if t, err := strconv.ParseInt(stamp, 10, 64); err == nil && t >= sec {
			sec = t + 1
		}
	}
	host, err := os.Hostname()
	if err != nil || host == "" || strings.ContainsAny(host, `/\`) {
		host = "localhost"
	}
	return fmt.Sprintf("%s%010d.%s.%d", filePrefix, sec, host, os.Getpid()), nil
}

// Files lists the event files in dir, in the order TensorBoard reads them.
// A missing dir has none.
func Files(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list TensorBoard log directory: %w", err)
	}
	var out []string
	for _, e := range entries {
		if !e.IsDir() && strings.Contains(e.Name(), "tfevents") {
			out = append(out, filepath.Join(dir, e.Name()))
		}
	}
	sort.Strings(out)
	return out, nil
}

// Path is the event file being written.
func (w *Writer) Path() string { return w.path }

// Scalars writes values at step, as Scalars-tab series named by their tags.
func (w *Writer) Scalars(step int64, values ...Scalar) error {
	s := &summarypb.Summary{}
	for _, v := range values {
		s.Value = append(s.Value, &summarypb.Summary_Value{Tag: v.Tag, Value: &summarypb.Summary_Value_SimpleValue{SimpleValue: v.Value}})
	}
	return w.summary(step, s)
}

// Image writes an encoded PNG at step under tag (the Images tab).
func (w *Writer) Image(step int64, tag string, png []byte) error {
	cfg, format, err := image.DecodeConfig(bytes.NewReader(png))
	if err != nil || format != "png" {
		return fmt.Errorf("write TensorBoard log %s: image %s at step %d is not a PNG: %v", w.path, tag, step, err)
	}
	return w.summary(step, &summarypb.Summary{Value: []*summarypb.Summary_Value{{
		Tag: tag,
		Value: &summarypb.Summary_Value_Image{Image: &summarypb.Summary_Image{
			Height: int32(cfg.Height), Width: int32(cfg.Width), Colorspace: colorspace(cfg.ColorModel),
			EncodedImageString: png,
		}},
	}}})
}

// colorspace is the Summary.Image channel count of a PNG's color model.
func colorspace(m color.Model) int32 {
	switch m {
	case color.GrayModel, color.Gray16Model:
		return 1
	case color.RGBAModel, color.RGBA64Model, color.NRGBAModel, color.NRGBA64Model:
		return 4
	}
	return 3
}

// Summary writes a serialized Summary proto at step, as TensorFlow's summary
// ops (HistogramSummary, MergeSummary) return it.
func (w *Writer) Summary(step int64, serialized []byte) error {
	s := &summarypb.Summary{}
	if err := proto.Unmarshal(serialized, s); err != nil {
		return fmt.Errorf("write TensorBoard log %s: summary at step %d is not a Summary proto: %w", w.path, step, err)
	}
	return w.summary(step, s)
}

func (w *Writer) summary(step int64, s *summarypb.Summary) error {
	return w.write(&eventpb.Event{Step: step, What: &eventpb.Event_Summary{Summary: s}})
}

// Graph writes a serialized GraphDef (the Graphs tab).
func (w *Writer) Graph(graphDef []byte) error {
	return w.write(&eventpb.Event{What: &eventpb.Event_GraphDef{GraphDef: graphDef}})
}

// SessionStart marks a (re)start of training whose first event is at step.
// TensorBoard then drops whatever an earlier session logged at step and
// later, such as the steps a crashed run logged after its last checkpoint,
// so a resumed run shows each step once.
func (w *Writer) SessionStart(step int64) error {
	return w.write(&eventpb.Event{Step: step, What: &eventpb.Event_SessionLog{
		SessionLog: &eventpb.SessionLog{Status: eventpb.SessionLog_START},
	}})
}

func (w *Writer) write(e *eventpb.Event) error {
	if w.err != nil {
		return w.err
	}
	now := w.now()
	e.WallTime = float64(now.UnixNano()) / 1e9
	data, err := proto.Marshal(e)
	if err != nil {
		return fmt.Errorf("write TensorBoard log %s: encode event: %w", w.path, err)
	}
	w.pending = appendRecord(w.pending, data)
	if now.Sub(w.lastFlush) >= FlushInterval {
		return w.writePending()
	}
	return nil
}

// writePending hands the buffered records to the file in one write.
func (w *Writer) writePending() error {
	if w.err != nil {
		return w.err
	}
	w.lastFlush = w.now()
	if len(w.pending) == 0 {
		return nil
	}
	if n, err := w.f.Write(w.pending); err != nil {
		// A write cut short (a full disk) would leave half a record, which
		// readers take for the end of the file: cut it off again.
		if n > 0 {
			if end, serr := w.f.Seek(-int64(n), io.SeekCurrent); serr == nil {
				w.f.Truncate(end)
			}
		}
		return w.fail(err)
	}
	w.pending = w.pending[:0]
	return nil
}

// Flush writes every event so far to the file and the file to disk.
func (w *Writer) Flush() error {
	if err := w.writePending(); err != nil {
		return err
	}
	if err := w.f.Sync(); err != nil {
		return w.fail(err)
	}
	return nil
}

// Close flushes and closes the file; later calls return an error.
func (w *Writer) Close() error {
	if w.f == nil {
		return w.err
	}
	err := w.Flush()
	if cerr := w.f.Close(); err == nil && cerr != nil {
		err = w.fail(cerr)
	}
	w.f = nil
	if err == nil {
		w.err = fmt.Errorf("write TensorBoard log %s: already closed", w.path)
	}
	return err
}

func (w *Writer) fail(err error) error {
	if w.err == nil {
		// The message names the file once ("write TensorBoard log X: no
		// space left on device"), not again through the *PathError.
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		w.err = fmt.Errorf("write TensorBoard log %s: %w", w.path, err)
	}
	return w.err
}
