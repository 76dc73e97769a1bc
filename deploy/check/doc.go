// Package check validates the files in deploy/ with the tools made for each: the
// compose-spec loader (schema and semantics), Kubernetes' strict decoder and
// kustomize, BuildKit's Dockerfile parser and linter, promtool, caddy and
// redis-server. It is a module of its own so that the main module does not depend
// on them; .ci/run runs it.
package check
