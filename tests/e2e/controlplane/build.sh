#!/usr/bin/env bash
# Builds the binaries of the e2e control plane from Go modules, outside the repository:
#   kube-apiserver, kube-controller-manager, kube-scheduler, kubectl  (k8s.io/kubernetes)
#   etcd, etcdctl, etcdutl                 (go.etcd.io/etcd/{server,etcdctl,etcdutl}/v3)
#   kwok + its stage YAMLs                                          (sigs.k8s.io/kwok)
#   helm (the chart's tests: lint, template, install)               (helm.sh/helm/v3)
#
# Everything lands under $DAEMONVIZ_E2E_CACHE (default ~/.cache/daemonviz-e2e), keyed by
# version, together with the Go module and build caches:
#   $CACHE/kubernetes-v1.36.3/bin/{kube-apiserver,kube-controller-manager,kube-scheduler,kubectl}
#   $CACHE/etcd-v3.6.16/bin/{etcd,etcdctl,etcdutl}
#   $CACHE/kwok-v0.8.0/bin/kwok, $CACHE/kwok-v0.8.0/stages/*.yaml
#   $CACHE/helm-v3.22.0/bin/helm
#   $CACHE/gomod, $CACHE/gocache
# A component whose binaries and stamp file exist is skipped, so a warm run takes a second.
# Prints the path of a shell-sourceable env file (binary paths) as its last line.
#
# Kubernetes cannot be `go install`ed: k8s.io/kubernetes requires its staging modules at
# v0.0.0 and replaces them with ./staging/...; a scratch module requires k8s.io/kubernetes
# vX.Y.Z and replaces each staging module with its published v0.Y.Z instead.
set -euo pipefail

K8S_VERSION="${DAEMONVIZ_E2E_K8S_VERSION:-v1.36.3}"
ETCD_VERSION="${DAEMONVIZ_E2E_ETCD_VERSION:-v3.6.16}"
KWOK_VERSION="${DAEMONVIZ_E2E_KWOK_VERSION:-v0.8.0}"
HELM_VERSION="${DAEMONVIZ_HELM_VERSION:-v3.22.0}"
CACHE="${DAEMONVIZ_E2E_CACHE:-$HOME/.cache/daemonviz-e2e}"
JOBS="${DAEMONVIZ_E2E_BUILD_JOBS:-2}"

if ! command -v go >/dev/null && [[ -x /usr/local/go/bin/go ]]; then
  export PATH="$PATH:/usr/local/go/bin"
fi
command -v go >/dev/null || { echo "e2e build: the go command is missing (Go 1.26 needed)" >&2; exit 1; }
for tool in openssl flock; do
  command -v "$tool" >/dev/null || { echo "e2e build: $tool is missing" >&2; exit 1; }
done

export GOMODCACHE="$CACHE/gomod"
export GOCACHE="$CACHE/gocache"
export GOFLAGS="-mod=mod -buildvcs=false"
export GOTOOLCHAIN="${GOTOOLCHAIN:-local}"
export CGO_ENABLED=0
mkdir -p "$CACHE" "$GOMODCACHE" "$GOCACHE"

log() { printf '[e2e-build %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }

# One build at a time per cache: a second `make e2e` waits instead of racing.
exec 9>"$CACHE/.build.lock"
flock 9

build_kubernetes() {
  local root="$CACHE/kubernetes-$K8S_VERSION" stamp bins=(kube-apiserver kube-controller-manager kube-scheduler kubectl)
  stamp="$root/bin/.complete"
  if [[ -f "$stamp" ]]; then
    log "kubernetes $K8S_VERSION: cached in $root/bin"
    return
  fi
  local t0=$SECONDS src="$root/src"
  local minor="${K8S_VERSION#v1.}"        # 36.3
  local staging_version="v0.$minor"        # v0.36.3
  local major=1 minor_only="${minor%%.*}"  # 36
  mkdir -p "$src" "$root/bin"
  log "kubernetes $K8S_VERSION: preparing scratch module in $src"
  local gomod
  gomod="$(go mod download -json "k8s.io/kubernetes@$K8S_VERSION" |
    sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",$/\1/p')"
  [[ -f "$gomod" ]] || { log "could not download k8s.io/kubernetes@$K8S_VERSION"; exit 1; }
  (
    cd "$src"
    rm -f go.mod go.sum
    go mod init daemonviz.local/e2e-kubernetes >/dev/null 2>&1
    go mod edit -go="$(sed -n 's/^go \([0-9.]*\)$/\1/p' "$gomod")"
    go mod edit -require="k8s.io/kubernetes@$K8S_VERSION"
    # Every `k8s.io/<name> => ./staging/src/k8s.io/<name>` becomes `=> k8s.io/<name> v0.Y.Z`.
    local mod
    for mod in $(sed -n 's#^[[:space:]]*\(k8s.io/[a-z0-9-]*\) => ./staging/src/.*#\1#p' "$gomod"); do
      go mod edit -replace="$mod=$mod@$staging_version"
    done
    local b
    for b in "${bins[@]}"; do go mod edit -tool="k8s.io/kubernetes/cmd/$b"; done
    log "kubernetes $K8S_VERSION: go mod tidy (downloads the dependencies on a cold cache)"
    go mod tidy
  )
  local ldflags="-s -w"
  local pkg
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ldflags+=" -X $pkg.gitVersion=$K8S_VERSION -X $pkg.gitMajor=$major -X $pkg.gitMinor=$minor_only"
    ldflags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
  done
  for b in "${bins[@]}"; do
    log "kubernetes $K8S_VERSION: go build $b (-p $JOBS)"
    (cd "$src" && go build -p "$JOBS" -trimpath -ldflags "$ldflags" -o "$root/bin/$b" "k8s.io/kubernetes/cmd/$b")
  done
  touch "$stamp"
  log "kubernetes $K8S_VERSION: built in $((SECONDS - t0)) s"
}

build_etcd() {
  # etcdctl (snapshot save) and etcdutl (snapshot restore) serve the etcd-restore test; they
  # share the server's module graph, so one scratch module builds all three.
  local root="$CACHE/etcd-$ETCD_VERSION" bins=(etcd etcdctl etcdutl) b
  local stamp="$root/bin/.complete-${#bins[@]}"
  if [[ -f "$stamp" ]]; then
    log "etcd $ETCD_VERSION: cached in $root/bin"
    return
  fi
  local t0=$SECONDS src="$root/src"
  mkdir -p "$src" "$root/bin"
  (
    cd "$src"
    rm -f go.mod go.sum
    go mod init daemonviz.local/e2e-etcd >/dev/null 2>&1
    local mod
    for mod in server etcdctl etcdutl; do
      go mod edit -require="go.etcd.io/etcd/$mod/v3@$ETCD_VERSION" -tool="go.etcd.io/etcd/$mod/v3"
    done
    log "etcd $ETCD_VERSION: go mod tidy"
    go mod tidy
    for b in "${bins[@]}"; do
      mod="$b"
      [[ "$b" == etcd ]] && mod=server
      log "etcd $ETCD_VERSION: go build $b (-p $JOBS)"
      go build -p "$JOBS" -trimpath -ldflags "-s -w" -o "$root/bin/$b" "go.etcd.io/etcd/$mod/v3"
    done
  )
  touch "$stamp"
  log "etcd $ETCD_VERSION: built in $((SECONDS - t0)) s"
}

build_kwok() {
  local root="$CACHE/kwok-$KWOK_VERSION"
  if [[ -f "$root/bin/.complete" ]]; then
    log "kwok $KWOK_VERSION: cached in $root/bin"
    return
  fi
  local t0=$SECONDS
  mkdir -p "$root/bin" "$root/stages"
  log "kwok $KWOK_VERSION: go install (-p $JOBS)"
  GOBIN="$root/bin" go install -p "$JOBS" -trimpath -ldflags "-s -w" "sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION"
  # Since v0.8.0 the kwok controller ships no default stages: keep the module's stage YAMLs.
  local moddir="$GOMODCACHE/sigs.k8s.io/kwok@$KWOK_VERSION"
  local rel
  for rel in node/fast/node-initialize.yaml node/heartbeat/node-heartbeat.yaml \
    node/chaos/node-not-ready.yaml pod/fast/pod-ready.yaml pod/fast/pod-delete.yaml \
    pod/fast/pod-complete.yaml pod/chaos/pod-container-running-failed.yaml; do
    cp "$moddir/kustomize/stage/$rel" "$root/stages/"
  done
  chmod -R u+w "$root/stages"
  touch "$root/bin/.complete"
  log "kwok $KWOK_VERSION: built in $((SECONDS - t0)) s"
}

# helm's module has no replace directives, so `go install module@version` builds it.
build_helm() {
  local root="$CACHE/helm-$HELM_VERSION"
  if [[ -f "$root/bin/.complete" ]]; then
    log "helm $HELM_VERSION: cached in $root/bin"
    return
  fi
  local t0=$SECONDS
  mkdir -p "$root/bin"
  log "helm $HELM_VERSION: go install (-p $JOBS)"
  GOBIN="$root/bin" go install -p "$JOBS" -trimpath \
    -ldflags "-s -w -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION" \
    "helm.sh/helm/v3/cmd/helm@$HELM_VERSION"
  touch "$root/bin/.complete"
  log "helm $HELM_VERSION: built in $((SECONDS - t0)) s"
}

T0=$SECONDS
case "${1:-all}" in
  kubernetes) build_kubernetes ;;
  etcd) build_etcd ;;
  kwok) build_kwok ;;
  helm) build_helm ;;
  all) build_etcd; build_kwok; build_kubernetes; build_helm ;;
  *) echo "usage: $0 [all|kubernetes|etcd|kwok|helm]" >&2; exit 2 ;;
esac

ENV_FILE="$CACHE/env-$K8S_VERSION-$ETCD_VERSION-$KWOK_VERSION.sh"
cat >"$ENV_FILE" <<EOF
DAEMONVIZ_E2E_K8S_VERSION=$K8S_VERSION
DAEMONVIZ_E2E_KUBE_APISERVER=$CACHE/kubernetes-$K8S_VERSION/bin/kube-apiserver
DAEMONVIZ_E2E_KUBE_CONTROLLER_MANAGER=$CACHE/kubernetes-$K8S_VERSION/bin/kube-controller-manager
DAEMONVIZ_E2E_KUBE_SCHEDULER=$CACHE/kubernetes-$K8S_VERSION/bin/kube-scheduler
DAEMONVIZ_E2E_KUBECTL=$CACHE/kubernetes-$K8S_VERSION/bin/kubectl
DAEMONVIZ_E2E_ETCD=$CACHE/etcd-$ETCD_VERSION/bin/etcd
DAEMONVIZ_E2E_ETCDCTL=$CACHE/etcd-$ETCD_VERSION/bin/etcdctl
DAEMONVIZ_E2E_ETCDUTL=$CACHE/etcd-$ETCD_VERSION/bin/etcdutl
DAEMONVIZ_E2E_KWOK=$CACHE/kwok-$KWOK_VERSION/bin/kwok
DAEMONVIZ_E2E_KWOK_STAGES=$CACHE/kwok-$KWOK_VERSION/stages
DAEMONVIZ_HELM=$CACHE/helm-$HELM_VERSION/bin/helm
EOF
log "done in $((SECONDS - T0)) s; disk: $(du -sh "$CACHE" 2>/dev/null | cut -f1)"
echo "$ENV_FILE"
