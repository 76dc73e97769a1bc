package app_test

import (
	"bufio"
	"io"
	"strings"
)

// sseReader reads the data of Server-Sent Events.
type sseReader struct{ sc *bufio.Scanner }

func newSSEReader(r io.Reader) *sseReader { return &sseReader{sc: bufio.NewScanner(r)} }

// next returns the data of the next event, skipping comments (heartbeats).
func (s *sseReader) next() (string, error) {
	var data []string
	for s.sc.Scan() {
		line := s.sc.Text()
		switch {
		case line == "" && len(data) > 0:
			return strings.Join(data, "\n"), nil
		case strings.HasPrefix(line, "data:"):
			data = append(data, strings.TrimPrefix(strings.TrimPrefix(line, "data:"), " "))
		}
	}
	if err := s.sc.Err(); err != nil {
		return "", err
	}
	return "", io.EOF
}
