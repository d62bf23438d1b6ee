#!/usr/bin/env bash
# Fails when the generated code or CRDs differ from what the API types
# produce: regenerates in a scratch copy of the tree and compares.
set -o errexit -o nounset -o pipefail

SCRIPT_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TMP="$(mktemp -d)"
trap 'rm -rf "${TMP}"' EXIT

GENERATED=(pkg/apis pkg/generated artifacts/crds hack/api-violations.list)

cd "${SCRIPT_ROOT}"
tar --exclude=./_output --exclude=./.git -cf - . | tar -C "${TMP}" -xf -
# Reuse the generator binaries built by earlier runs.
mkdir -p "${SCRIPT_ROOT}/_output/codegen-bin" "${TMP}/_output"
ln -s "${SCRIPT_ROOT}/_output/codegen-bin" "${TMP}/_output/codegen-bin"

"${TMP}/hack/update-codegen.sh" >/dev/null

status=0
for d in "${GENERATED[@]}"; do
  if ! diff -Nru "${SCRIPT_ROOT}/${d}" "${TMP}/${d}"; then
    status=1
  fi
done
if [[ ${status} -ne 0 ]]; then
  echo "Generated files are out of date: run hack/update-codegen.sh and commit the result." >&2
  exit 1
fi
echo "Generated files are up to date."
