#!/usr/bin/env bash
# Regenerates everything under pkg/generated/, the zz_generated files of the
# API package and the CRD manifests under artifacts/crds/. Never edit those
# files by hand: change the types and run this.
set -o errexit -o nounset -o pipefail

SCRIPT_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
MODULE="$(cd "${SCRIPT_ROOT}" && go list -m)"
if [[ -z "${CODEGEN_PKG:-}" ]]; then
  # go list names the module's directory only once it is in the module
  # cache: on a fresh clone nothing has downloaded it yet.
  (cd "${SCRIPT_ROOT}" && go mod download k8s.io/code-generator)
  CODEGEN_PKG="$(cd "${SCRIPT_ROOT}" && go list -m -f '{{.Dir}}' k8s.io/code-generator)"
fi

# kube_codegen.sh installs the generators into GOBIN; keep them in our cache
# folder so that nothing outside the repository changes.
export GOBIN="${SCRIPT_ROOT}/_output/codegen-bin"
mkdir -p "${GOBIN}"

source "${CODEGEN_PKG}/kube_codegen.sh"

boilerplate="${SCRIPT_ROOT}/hack/boilerplate.go.txt"
cd "${SCRIPT_ROOT}"

kube::codegen::gen_helpers \
    --boilerplate "${boilerplate}" \
    "${SCRIPT_ROOT}/pkg/apis"

kube::codegen::gen_register \
    --boilerplate "${boilerplate}" \
    "${SCRIPT_ROOT}/pkg/apis"

# OpenAPI models of the API types (and of the core types they use), then the
# schema the apply configurations embed: without it client-go's
# field-managing fake clientset (NewClientset) cannot create objects of this
# API in unit tests. The models are only an input of the schema, so they are
# generated into the schema tool's module and not committed. Rule violations
# openapi-gen reports are kept in hack/api-violations.list.
kube::codegen::gen_openapi \
    --output-dir "${SCRIPT_ROOT}/hack/tools/openapischema/models" \
    --output-pkg "${MODULE}/hack/tools/openapischema/models" \
    --report-filename "${SCRIPT_ROOT}/hack/api-violations.list" \
    --update-report \
    --extra-pkgs k8s.io/api/core/v1 \
    --boilerplate "${boilerplate}" \
    "${SCRIPT_ROOT}/pkg/apis"
schema="${SCRIPT_ROOT}/_output/openapi-schema.json"
mkdir -p "$(dirname "${schema}")"
(cd "${SCRIPT_ROOT}/hack/tools/openapischema" && go run .) > "${schema}"

kube::codegen::gen_client \
    --with-watch \
    --with-applyconfig \
    --applyconfig-openapi-schema "${schema}" \
    --output-dir "${SCRIPT_ROOT}/pkg/generated" \
    --output-pkg "${MODULE}/pkg/generated" \
    --boilerplate "${boilerplate}" \
    "${SCRIPT_ROOT}/pkg/apis"

# CRDs: controller-gen only renders YAML from the markers; the operator's
# code never imports controller-runtime.
go tool controller-gen \
    crd:crdVersions=v1 \
    paths="./pkg/apis/..." \
    output:crd:artifacts:config="${SCRIPT_ROOT}/artifacts/crds"
