package check

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/linter"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
)

// TestDockerfile parses deploy/Dockerfile with BuildKit's own parser and
// linter (the checks of `docker build --check`; any warning fails), then
// checks what the image must be: multi-stage, a static binary, a non-root user.
func TestDockerfile(t *testing.T) {
	f, err := os.Open(filepath.Join(deployDir, "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ast, err := parser.Parse(f)
	if err != nil {
		t.Fatalf("Dockerfile: %v", err)
	}
	for _, w := range ast.Warnings {
		t.Errorf("Dockerfile:%d: %s", w.Location.Start.Line, w.Short)
	}
	lint := linter.New(&linter.Config{Warn: func(rule, _, _, msg string, loc []parser.Range) {
		line := 0
		if len(loc) > 0 {
			line = loc[0].Start.Line
		}
		t.Errorf("Dockerfile:%d: %s: %s", line, rule, msg)
	}})
	stages, _, err := instructions.Parse(ast.AST, lint)
	if err != nil {
		t.Fatalf("Dockerfile: %v", err)
	}
	if len(stages) < 2 {
		t.Fatalf("%d stage(s): want a build stage and a runtime stage", len(stages))
	}
	build, final := stages[0], stages[len(stages)-1]
	var user string
	var built, copied bool
	for _, cmd := range build.Commands {
		if r, ok := cmd.(*instructions.RunCommand); ok {
			line := strings.Join(r.CmdLine, " ")
			built = built || (strings.Contains(line, "CGO_ENABLED=0") && strings.Contains(line, "go build") && strings.Contains(line, "./cmd/passerelle"))
		}
	}
	for _, cmd := range final.Commands {
		switch c := cmd.(type) {
		case *instructions.UserCommand:
			user = c.User
		case *instructions.CopyCommand:
			copied = copied || (c.From == build.Name && slices.Contains(c.SourcePaths, "/out/passerelle"))
		case *instructions.RunCommand:
			t.Errorf("the runtime stage runs %q: it has no shell", c.CmdLine)
		}
	}
	if !built {
		t.Errorf("the build stage does not build ./cmd/passerelle with CGO_ENABLED=0 (a static binary)")
	}
	if final.BaseName != "scratch" || !copied {
		t.Errorf("the runtime stage is %q holding %v: want scratch with the built binary only", final.BaseName, copied)
	}
	if uid, _, _ := strings.Cut(user, ":"); user == "" || uid == "0" || uid == "root" {
		t.Errorf("the image runs as %q: want a non-root user", user)
	}
}
