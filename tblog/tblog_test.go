package tblog

import (
	"bytes"
	"encoding/hex"
	"errors"
	"image"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	summarypb "github.com/wamuir/graft/tensorflow/core/framework/summary_go_proto"
	eventpb "github.com/wamuir/graft/tensorflow/core/util/event_go_proto"
	"google.golang.org/protobuf/proto"
)

func TestMaskedCRCMatchesTensorFlow(t *testing.T) {
	// The unmasked values of the 32-byte inputs are the CRC32C test vectors of
	// RFC 3720, appendix B.4; "123456789" gives CRC32C's published check value.
	// The masked values were computed with TensorBoard's own implementation:
	//   from tensorboard.compat.tensorflow_stub.pywrap_tensorflow import masked_crc32c
	ascending := make([]byte, 32)
	for i := range ascending {
		ascending[i] = byte(i)
	}
	tests := []struct {
		name   string
		data   []byte
		masked uint32
	}{
		{"empty", nil, 0xa282ead8},
		{"123456789", []byte("123456789"), 0xc78ab0e5}, // CRC32C 0xe3069283
		{"a", []byte("a"), 0x28e46e78},
		{"32 zeros", make([]byte, 32), 0x0fd7fffa}, // CRC32C 0x8a9136aa
		{"0..31", ascending, 0x951f7892},           // CRC32C 0x46dd794e
		{"length 9", []byte{9, 0, 0, 0, 0, 0, 0, 0}, 0x3971f937},
	}
	for _, tc := range tests {
		if got := maskedCRC(tc.data); got != tc.masked {
			t.Errorf("maskedCRC(%s) = %#08x, want %#08x", tc.name, got, tc.masked)
		}
	}
}

func TestRecordFramingMatchesTensorBoardsRecordWriter(t *testing.T) {
	// Two records, "123456789" and an empty one, as written by
	// tensorboard.summary.writer.record_writer.RecordWriter.
	want, _ := hex.DecodeString("090000000000000037f97139313233343536373839e5b08ac7" +
		"000000000000000029039807d8ea82a2")
	got := appendRecord(appendRecord(nil, []byte("123456789")), nil)
	if !bytes.Equal(got, want) {
		t.Fatalf("records\n%x\nwant\n%x", got, want)
	}
	r := bytes.NewReader(got)
	for _, w := range []string{"123456789", ""} {
		data, err := readRecord(r)
		if err != nil || string(data) != w {
			t.Fatalf("read back %q, %v; want %q", data, err, w)
		}
	}
}

func TestReadRejectsDamage(t *testing.T) {
	rec := appendRecord(nil, []byte("some event"))
	flip := func(i int) []byte {
		b := append([]byte(nil), rec...)
		b[i] ^= 1
		return b
	}
	tests := []struct {
		name string
		data []byte
		want string
	}{
		{"length", flip(0), "length checksum"},
		{"length crc", flip(9), "length checksum"},
		{"data", flip(13), "data checksum"},
		{"data crc", flip(len(rec) - 1), "data checksum"},
	}
	for _, tc := range tests {
		if _, err := readRecord(bytes.NewReader(tc.data)); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s flipped: %v, want %q", tc.name, err, tc.want)
		}
	}
	for _, n := range []int{1, 11, 12, len(rec) - 1} {
		if _, err := readRecord(bytes.NewReader(rec[:n])); !errors.Is(err, ErrTruncated) {
			t.Errorf("first %d bytes: %v, want ErrTruncated", n, err)
		}
	}
}

// grayPNG encodes a w x h grey image.
func grayPNG(t *testing.T, w, h int) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := png.Encode(&b, image.NewGray(image.Rect(0, 0, w, h))); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func TestWriterWritesEventsTensorBoardUnderstands(t *testing.T) {
	dir := t.TempDir()
	w, err := Create(dir)
	if err != nil {
		t.Fatal(err)
	}
	histo, _ := proto.Marshal(&summarypb.Summary{Value: []*summarypb.Summary_Value{{
		Tag: "w", Value: &summarypb.Summary_Value_Histo{Histo: &summarypb.HistogramProto{Num: 3, Min: -1, Max: 1}},
	}}})
	for _, err := range []error{
		w.Graph([]byte("not really a graph")),
		w.SessionStart(1),
		w.Scalars(1, Scalar{"loss", 0.5}, Scalar{"acc", 0.25}),
		w.Image(2, "grid", grayPNG(t, 30, 20)),
		w.Summary(2, histo),
		w.Close(),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
	events, err := ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(events) != 6 {
		t.Fatalf("%d events, want 6", len(events))
	}
	if v := events[0].GetFileVersion(); v != "brain.Event:2" {
		t.Errorf("first event's file_version %q, want brain.Event:2 (TensorBoard purges on restart only for version 2)", v)
	}
	if string(events[1].GetGraphDef()) != "not really a graph" {
		t.Errorf("graph event %v", events[1])
	}
	if s := events[2].GetSessionLog(); s.GetStatus() != eventpb.SessionLog_START || events[2].Step != 1 {
		t.Errorf("session start event %v", events[2])
	}
	sc := events[3].GetSummary().GetValue()
	if events[3].Step != 1 || len(sc) != 2 || sc[0].Tag != "loss" || sc[0].GetSimpleValue() != 0.5 || sc[1].GetSimpleValue() != 0.25 {
		t.Errorf("scalars event %v", events[3])
	}
	img := events[4].GetSummary().GetValue()[0].GetImage()
	if img.GetWidth() != 30 || img.GetHeight() != 20 || img.GetColorspace() != 1 {
		t.Errorf("image %dx%d colorspace %d, want 30x20 grey (1)", img.GetWidth(), img.GetHeight(), img.GetColorspace())
	}
	if h := events[5].GetSummary().GetValue()[0].GetHisto(); h.GetNum() != 3 || events[5].Step != 2 {
		t.Errorf("histogram event %v", events[5])
	}
	for i, e := range events {
		if e.WallTime < 1e9 {
			t.Errorf("event %d has wall time %v; TensorBoard drops events without a valid time", i, e.WallTime)
		}
	}
	if err := w.Scalars(3, Scalar{"loss", 1}); err == nil {
		t.Error("a write after Close succeeded")
	}
}

func TestWriterRefusesWhatIsNotItsFormat(t *testing.T) {
	w, err := Create(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if err := w.Image(1, "grid", []byte("GIF89a")); err == nil || !strings.Contains(err.Error(), "not a PNG") {
		t.Errorf("non-PNG image: %v", err)
	}
	if err := w.Summary(1, []byte{0xff, 0xff}); err == nil || !strings.Contains(err.Error(), "not a Summary") {
		t.Errorf("garbage summary: %v", err)
	}
	// Bad input is not an I/O failure: the log stays usable.
	if err := w.Scalars(1, Scalar{"loss", 1}); err != nil {
		t.Errorf("write after refused input: %v", err)
	}
}

func TestLaterFilesSortAfterEarlierOnes(t *testing.T) {
	dir := t.TempDir()
	now := time.Unix(1_700_000_000, 0)
	clock := func() time.Time { return now }
	var paths []string
	for i := 0; i < 3; i++ { // all in the same second, as a quick resume can be
		w, err := create(dir, clock)
		if err != nil {
			t.Fatal(err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		paths = append(paths, w.Path())
	}
	files, err := Files(dir)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(files, "\n") != strings.Join(paths, "\n") {
		t.Errorf("TensorBoard would read\n%s\nbut they were written\n%s", strings.Join(files, "\n"), strings.Join(paths, "\n"))
	}
	if !strings.HasPrefix(filepath.Base(paths[0]), "events.out.tfevents.1700000000.") {
		t.Errorf("file name %s lacks the events.out.tfevents.<seconds>. prefix", paths[0])
	}
}

func TestEventsReachTheFileWithoutAnExplicitFlush(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	w, err := create(t.TempDir(), func() time.Time { return now })
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	count := func() int {
		events, err := Read(w.Path())
		if err != nil {
			t.Fatal(err)
		}
		return len(events)
	}
	if n := count(); n != 1 {
		t.Fatalf("a new file holds %d events, want its file_version at once", n)
	}
	w.Scalars(1, Scalar{"loss", 1})
	if n := count(); n != 1 {
		t.Errorf("an event reached the file before FlushInterval passed (%d events)", n)
	}
	now = now.Add(FlushInterval)
	w.Scalars(2, Scalar{"loss", 1})
	if n := count(); n != 3 {
		t.Errorf("after FlushInterval the file holds %d events, want 3", n)
	}
}

func TestWriteErrorsSurface(t *testing.T) {
	w, err := Create(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	w.f.Close() // the file goes away under the writer, as on a full or lost disk
	w.Scalars(1, Scalar{"loss", 1})
	err = w.Flush()
	if err == nil || !strings.Contains(err.Error(), "write TensorBoard log "+w.Path()) {
		t.Fatalf("flush to a closed file: %v", err)
	}
	if again := w.Scalars(2, Scalar{"loss", 1}); again == nil {
		t.Error("a write after a failed one succeeded")
	}
	if _, err := Create(filepath.Join(w.Path(), "sub")); err == nil {
		t.Error("Create under a file succeeded")
	}
	os.Remove(w.Path())
}
