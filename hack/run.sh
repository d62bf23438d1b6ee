#!/usr/bin/env bash
# make run: a local control plane, the operator, the examples and the
# registry's data plane (see hack/demo), until Ctrl-C. Needs root and the
# binaries of `make tools build` in _output/bin.
set -o errexit -o nounset -o pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
go build -o _output/bin/iro-demo ./hack/demo
exec _output/bin/iro-demo "$@"
