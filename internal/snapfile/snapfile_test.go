package snapfile_test

import (
	"bytes"
	"errors"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"passerelle/internal/snapfile"
)

var kind = snapfile.Kind{Magic: "test snapshot\n", Version: 2, MaxString: 16}

type values struct {
	U     uint64
	I     int64
	F     float64
	S     string
	B     []byte
	Flags []bool
}

func write(e *snapfile.Encoder, v values) {
	e.Uint(v.U)
	e.Int(v.I)
	e.Float(v.F)
	e.String(v.S)
	e.Bytes(v.B)
	e.Flags(v.Flags...)
}

func read(d *snapfile.Decoder) values {
	return values{U: d.Uint(), I: d.Int(), F: d.Float(), S: d.String(), B: d.Bytes(), Flags: d.Flags(3)}
}

// Every kind of value reads back as written; the file is replaced whole.
func TestSaveRead(t *testing.T) {
	file := filepath.Join(t.TempDir(), "snap")
	for _, v := range []values{
		{U: math.MaxUint64, I: math.MinInt64, F: -0.5, S: "héllo", B: []byte{0, 1, 2}, Flags: []bool{true, false, true}},
		{F: math.Inf(1), Flags: []bool{false, false, false}},
	} {
		if err := snapfile.Save(file, kind, "log-1", func(e *snapfile.Encoder) { write(e, v) }); err != nil {
			t.Fatal(err)
		}
		var got values
		log, err := snapfile.Read(file, kind, func(d *snapfile.Decoder) { got = read(d) })
		if err != nil || log != "log-1" || !reflect.DeepEqual(got, v) {
			t.Fatalf("read back %+v, log %q, %v; wrote %+v", got, log, err, v)
		}
	}
	if left, _ := filepath.Glob(file + ".*"); len(left) != 0 {
		t.Fatalf("temporary files left: %v", left)
	}
	// a save cut short by a stop left its temporary file: the next save
	// removes it once it is old, not one a save under way is writing
	stale, fresh := file+".1.tmp", file+".2.tmp"
	for _, name := range []string{stale, fresh} {
		if err := os.WriteFile(name, []byte("cut short"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	old := time.Now().Add(-2 * time.Hour)
	if err := os.Chtimes(stale, old, old); err != nil {
		t.Fatal(err)
	}
	if err := snapfile.Save(file, kind, "log-1", func(*snapfile.Encoder) {}); err != nil {
		t.Fatal(err)
	}
	if left, _ := filepath.Glob(file + ".*"); len(left) != 1 || left[0] != fresh {
		t.Fatalf("temporary files left: %v, want only %s", left, fresh)
	}
}

// A file missing, of another kind or version, damaged anywhere, cut short,
// longer than it says, or holding a string over the bound is refused.
func TestReadRefuses(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "snap")
	if _, err := snapfile.Read(file, kind, func(*snapfile.Decoder) {}); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("no file: %v", err)
	}
	v := values{U: 300, S: "abc", B: []byte("xyz"), Flags: []bool{true, true, false}}
	var buf bytes.Buffer
	if err := snapfile.Write(&buf, kind, "log", func(e *snapfile.Encoder) { write(e, v) }); err != nil {
		t.Fatal(err)
	}
	good := buf.Bytes()
	try := func(name string, b []byte, k snapfile.Kind) {
		t.Helper()
		if err := os.WriteFile(file, b, 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := snapfile.Read(file, k, func(d *snapfile.Decoder) { read(d) }); err == nil {
			t.Fatalf("%s: read without error", name)
		}
	}
	for i := range good {
		b := bytes.Clone(good)
		b[i] ^= 0x21
		try("byte flipped", b, kind)
		try("cut short", good[:i], kind)
	}
	try("longer", append(bytes.Clone(good), 0), kind)
	try("another kind", good, snapfile.Kind{Magic: "other\n", Version: 2, MaxString: 16})
	try("another version", good, snapfile.Kind{Magic: kind.Magic, Version: 3, MaxString: 16})
	buf.Reset()
	if err := snapfile.Write(&buf, kind, "log", func(e *snapfile.Encoder) { e.String("a string longer than sixteen bytes") }); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(file, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := snapfile.Read(file, kind, func(d *snapfile.Decoder) { _ = d.String() }); !errors.Is(err, snapfile.ErrDamaged) {
		t.Fatalf("a string over the bound: %v", err)
	}
}
