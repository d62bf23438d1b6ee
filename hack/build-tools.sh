#!/usr/bin/env bash

# build-tools.sh builds the pinned binaries that the e2e and data-plane tests
# run (etcd, kube-apiserver, kube-controller-manager, kubectl, the distribution
# registry and crane; kubelet and crictl for the real node) from the Go module
# proxy into _output/bin.
#
# Each tool lives in its own module under hack/tools/ so that the projects'
# dependency graphs never meet each other or the operator's. The versions are
# pinned in those go.mod files; this script refuses to build if a module pins
# something else than the version listed below, so that a bump is a deliberate
# two-line change.
#
# A tool is rebuilt only when its stamp file (version, `go version`, GOFLAGS
# and the hash of its tools module's go.mod/go.sum) differs from the one
# recorded by the last successful build, so a warm run takes seconds.
#
# Usage: hack/build-tools.sh [TOOL...]     (default: all tools)
#        FORCE=1 hack/build-tools.sh ...    (rebuild even if up to date)
#        IRO_BIN_DIR=/path hack/build-tools.sh (install elsewhere; the e2e
#                                              framework reads the same variable)

set -o errexit
set -o nounset
set -o pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
OUTPUT_BIN="${IRO_BIN_DIR:-${REPO_ROOT}/_output/bin}"

KUBE_VERSION="v1.37.2"
ETCD_VERSION="v3.6.16"
REGISTRY_VERSION="v3.1.2"
CRANE_VERSION="v0.22.1"
# SeaweedFS publishes no module versions; this is the pseudo-version the
# module proxy served for the commit the tests were written against.
SEAWEEDFS_VERSION="v0.0.0-20261109003541-7506e5f91cd6"
CRICTL_VERSION="v1.37.0"

# name|tools module dir (relative to hack/tools)|module|version|package
TOOLS=(
  "etcd|etcd|go.etcd.io/etcd/server/v3|${ETCD_VERSION}|go.etcd.io/etcd/server/v3"
  "kube-apiserver|kube|k8s.io/kubernetes|${KUBE_VERSION}|k8s.io/kubernetes/cmd/kube-apiserver"
  "kube-controller-manager|kube|k8s.io/kubernetes|${KUBE_VERSION}|k8s.io/kubernetes/cmd/kube-controller-manager"
  "kubectl|kube|k8s.io/kubernetes|${KUBE_VERSION}|k8s.io/kubernetes/cmd/kubectl"
  "kubelet|kube|k8s.io/kubernetes|${KUBE_VERSION}|k8s.io/kubernetes/cmd/kubelet"
  "registry|registry|github.com/distribution/distribution/v3|${REGISTRY_VERSION}|github.com/distribution/distribution/v3/cmd/registry"
  "crane|registry|github.com/google/go-containerregistry|${CRANE_VERSION}|github.com/google/go-containerregistry/cmd/crane"
  "weed|seaweedfs|github.com/seaweedfs/seaweedfs|${SEAWEEDFS_VERSION}|github.com/seaweedfs/seaweedfs/weed"
  "crictl|cri|sigs.k8s.io/cri-tools|${CRICTL_VERSION}|sigs.k8s.io/cri-tools/cmd/crictl"
)

log() {
  echo "+++ [$(date +'%H:%M:%S')] $*" >&2
}

die() {
  echo "!!! $*" >&2
  exit 1
}

# version_ldflags prints the -X flags that stamp a tool with its release
# version, as the upstream release builds do. Without them kube-apiserver
# reports v0.0.0-master in /version, which confuses kubectl's skew warning and
# anything that reads the server version.
version_ldflags() {
  local name="$1" version="$2"
  case "${name}" in
    kube-apiserver|kube-controller-manager|kubectl|kubelet)
      local minor="${version#v1.}"
      minor="${minor%%.*}"
      local pkg
      for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
        printf -- ' -X %s.gitVersion=%s' "${pkg}" "${version}"
        printf -- ' -X %s.gitMajor=1 -X %s.gitMinor=%s' "${pkg}" "${pkg}" "${minor}"
        printf -- ' -X %s.gitTreeState=clean' "${pkg}"
      done
      ;;
    registry)
      printf -- ' -X github.com/distribution/distribution/v3/version.version=%s' "${version}"
      ;;
    crane)
      printf -- ' -X github.com/google/go-containerregistry/cmd/crane/cmd.Version=%s' "${version}"
      ;;
    crictl)
      printf -- ' -X sigs.k8s.io/cri-tools/pkg/version.Version=%s' "${version}"
      ;;
  esac
}

# stamp_for prints everything that, when changed, must trigger a rebuild.
stamp_for() {
  local name="$1" dir="$2" module="$3" version="$4" pkg="$5"
  local moddir="${REPO_ROOT}/hack/tools/${dir}"
  echo "tool=${name}"
  echo "package=${pkg}"
  echo "module=${module}@${version}"
  echo "go=${GO_VERSION}"
  echo "goflags=${GO_FLAGS}"
  echo "ldflags=$(version_ldflags "${name}" "${version}")"
  (cd "${moddir}" && sha256sum go.mod go.sum)
}

# check_pin fails when the tools module requires another version of the tool's
# module than the one this script pins.
check_pin() {
  local dir="$1" module="$2" version="$3"
  local gomod="${REPO_ROOT}/hack/tools/${dir}/go.mod"
  grep -Eq "^[[:space:]]*(require[[:space:]]+)?${module//./\\.}[[:space:]]+${version//./\\.}([[:space:]]|$)" "${gomod}" \
    || die "${gomod} does not require ${module} ${version}; update one or the other"
}

build_tool() {
  local name="$1" dir="$2" module="$3" version="$4" pkg="$5"
  local out="${OUTPUT_BIN}/${name}"
  local stamp_file="${STAMP_DIR}/${name}.stamp"

  check_pin "${dir}" "${module}" "${version}"

  local want
  want="$(stamp_for "$@")"
  if [[ -z "${FORCE:-}" && -x "${out}" && -f "${stamp_file}" ]] \
    && [[ "$(cat "${stamp_file}")" == "${want}" ]]; then
    log "${name} ${version} is up to date"
    return 0
  fi

  log "building ${name} ${version} (${pkg})"
  local start=${SECONDS}
  # Build into a temporary name and rename, so that an interrupted build never
  # leaves a truncated binary that looks up to date.
  (
    cd "${REPO_ROOT}/hack/tools/${dir}"
    # GOWORK=off: a go.work file above the repository must not pull the
    # tools module into someone else's workspace.
    GOWORK=off CGO_ENABLED=0 go build -trimpath \
      -ldflags="-s -w$(version_ldflags "${name}" "${version}")" \
      -o "${out}.tmp" "${pkg}"
  )
  mv -f "${out}.tmp" "${out}"
  printf '%s\n' "${want}" >"${stamp_file}"
  log "built ${name} in $((SECONDS - start))s ($(du -h "${out}" | cut -f1))"
}

main() {
  command -v go >/dev/null || die "go is not on PATH"
  # The toolchain is part of the stamp: a new Go release rebuilds everything.
  GO_VERSION="$(go version)"
  # `go env` also sees flags set with `go env -w`, not just $GOFLAGS.
  GO_FLAGS="$(go env GOFLAGS)"
  if [[ "${GO_FLAGS}" == *"-mod=vendor"* ]]; then
    die "GOFLAGS=${GO_FLAGS}: the tools modules are not vendored; drop -mod=vendor"
  fi

  local -a wanted=("$@")
  local entry name found
  if [[ ${#wanted[@]} -eq 0 ]]; then
    for entry in "${TOOLS[@]}"; do
      wanted+=("${entry%%|*}")
    done
  fi

  mkdir -p "${OUTPUT_BIN}"
  # Absolute, because the builds run from inside the tools modules.
  OUTPUT_BIN="$(cd "${OUTPUT_BIN}" && pwd -P)"
  STAMP_DIR="${OUTPUT_BIN}/.stamps"
  mkdir -p "${STAMP_DIR}"
  local start=${SECONDS}
  for name in "${wanted[@]}"; do
    found=""
    for entry in "${TOOLS[@]}"; do
      if [[ "${entry%%|*}" == "${name}" ]]; then
        found="${entry}"
        break
      fi
    done
    if [[ -z "${found}" ]]; then
      local known=()
      for entry in "${TOOLS[@]}"; do known+=("${entry%%|*}"); done
      die "unknown tool ${name}; known tools: ${known[*]}"
    fi
    local -a fields
    IFS='|' read -r -a fields <<<"${found}"
    build_tool "${fields[@]}"
  done
  log "all done in $((SECONDS - start))s; binaries in ${OUTPUT_BIN}"
}

main "$@"
