package tblog

import (
	"bufio"
	"fmt"
	"io"
	"os"

	eventpb "github.com/wamuir/graft/tensorflow/core/util/event_go_proto"
	"google.golang.org/protobuf/proto"
)

// Read returns the events of one event file, checking every checksum. On a
// truncated or corrupt record it returns the events before it with the error.
func Read(path string) ([]*eventpb.Event, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read TensorBoard log: %w", err)
	}
	defer f.Close()
	r := bufio.NewReader(f)
	var events []*eventpb.Event
	for i := 0; ; i++ {
		data, err := readRecord(r)
		if err == io.EOF {
			return events, nil
		}
		if err != nil {
			return events, fmt.Errorf("read %s: record %d: %w", path, i, err)
		}
		e := &eventpb.Event{}
		if err := proto.Unmarshal(data, e); err != nil {
			return events, fmt.Errorf("read %s: record %d is not an Event: %w", path, i, err)
		}
		events = append(events, e)
	}
}

// ReadDir returns the events of every event file in dir, in the order
// TensorBoard reads them.
func ReadDir(dir string) ([]*eventpb.Event, error) {
	files, err := Files(dir)
	if err != nil {
		return nil, err
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("read TensorBoard log: no event files in %s", dir)
	}
	var all []*eventpb.Event
	for _, f := range files {
		events, err := Read(f)
		all = append(all, events...)
		if err != nil {
			return all, err
		}
	}
	return all, nil
}
