#!/usr/bin/env bash
# Tests of deploy/ with real tools (scripts/test.sh runs it after the Rust tests):
#  1. the systemd unit: `systemd-analyze verify`;
#  2. the Kubernetes manifests: `kubernetes-validate --strict` (schemas bundled, offline), and
#     the logsieve config in each ConfigMap passes `logsieve validate`;
#  3. the alert rules: `promtool check rules`;
#  4. the image: built with podman from deploy/Dockerfile on a Debian 12 base made here with
#     debootstrap (no registry is reachable), run on a bind-mounted log folder: it labels the
#     lines, serves /health on a published port, runs as a non-root user;
#  5. the sidecar manifest played with `podman kube play`: records come out of the logsieve
#     container.
# What it installs (Debian: podman, runc, catatonit, debootstrap; promtool unpacked from Debian's
# prometheus package; PyPI: kubernetes-validate) and builds (the base image, ~80 s) is cached under
# ${LOGSIEVE_CACHE:-~/.cache/logsieve}. Needs root (podman, debootstrap) and the release binary
# and model assets (scripts/test.sh has made them).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"
CACHE="${LOGSIEVE_CACHE:-$HOME/.cache/logsieve}"
BIN="$ROOT/target/release/logsieve"
say() { echo "deploy-test: $*" >&2; }
die() { say "FAILED: $*"; exit 1; }
[[ -x "$BIN" ]] || die "no $BIN: run cargo build --release first"
WORK="$(mktemp -d /tmp/logsieve-deploy.XXXXXX)"
cleanup() {
  if [[ -n "${PODMAN_READY:-}" ]]; then
    podman kube down "$WORK/sidecar.yaml" >/dev/null 2>&1 || true
    podman rm -f logsieve-deploy-test >/dev/null 2>&1 || true
    podman system reset -f >/dev/null 2>&1 || true
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT

need_apt=()
command -v podman >/dev/null || need_apt+=(podman)
command -v runc >/dev/null || need_apt+=(runc)
command -v debootstrap >/dev/null || need_apt+=(debootstrap)
command -v catatonit >/dev/null || [[ -x /usr/libexec/podman/catatonit ]] || need_apt+=(catatonit)
if ((${#need_apt[@]})); then
  say "installing ${need_apt[*]} (Debian)"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi

# 1. The systemd unit, pointing at the binary built here.
sed "s#/usr/local/bin/logsieve#$BIN#g" deploy/systemd/logsieve.service >"$WORK/logsieve.service"
systemd-analyze verify "$WORK/logsieve.service" 2>&1 | grep -v "sysinit.target" | tee "$WORK/verify.txt" >&2 || true
if grep -q . "$WORK/verify.txt"; then die "systemd-analyze verify found problems"; fi
say "systemd unit: verified"

# 2. The manifests, offline, against the bundled Kubernetes schemas.
VENV="$CACHE/venvs/kubernetes-validate"
if [[ ! -x "$VENV/bin/kubernetes-validate" ]]; then
  say "installing kubernetes-validate (PyPI) into $VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q 'kubernetes-validate==1.31.0'
fi
"$VENV/bin/kubernetes-validate" --strict deploy/kubernetes/*.yaml >&2
# The logsieve config of each ConfigMap is valid too (its variables set as the pod would).
for manifest in deploy/kubernetes/*.yaml; do
  dir="$WORK/configmap-$(basename "$manifest" .yaml)"
  mkdir -p "$dir"
  "$VENV/bin/python" - "$manifest" "$dir" <<'PY'
import sys, yaml, pathlib
manifest, out = sys.argv[1], pathlib.Path(sys.argv[2])
for doc in yaml.safe_load_all(open(manifest)):
    if doc and doc.get("kind") == "ConfigMap":
        for name, text in doc["data"].items():
            (out / name).write_text(text)
PY
  # As in the pod: /var/log/app and /var/lib/logsieve exist (here, in a mount namespace of
  # the check's own), the variables are set, the model is where the image keeps it.
  (cd "$ROOT" && POD_NAME=p POD_NAMESPACE=n KAFKA_BOOTSTRAP_SERVERS=kafka:9092 \
    unshare -m --propagation private sh -c '
      mount -t tmpfs tmpfs /var/log && mkdir -p /var/log/app &&
      mount -t tmpfs tmpfs /var/lib && mkdir -p /var/lib/logsieve &&
      exec "$0" validate --config "$1"' "$BIN" "$dir/logsieve.toml" >/dev/null) \
    || die "the config in $manifest is not valid"
done
say "kubernetes manifests: valid (--strict), their logsieve configs too"

# 3. The alert rules, with promtool taken out of Debian's prometheus package (not installed:
#    installing it would start a Prometheus server).
PROMTOOL="$CACHE/bin/promtool"
if [[ ! -x "$PROMTOOL" ]]; then
  say "fetching promtool (Debian's prometheus package, unpacked into $CACHE/bin)"
  mkdir -p "$CACHE/bin" "$WORK/prometheus-deb"
  (cd "$WORK/prometheus-deb" && apt-get download prometheus >/dev/null 2>&1) \
    || { apt-get update -qq && (cd "$WORK/prometheus-deb" && apt-get download prometheus >/dev/null); }
  dpkg-deb -x "$WORK"/prometheus-deb/prometheus_*.deb "$WORK/prometheus-deb/root"
  install -m 0755 "$WORK/prometheus-deb/root/usr/bin/promtool" "$PROMTOOL"
fi
"$PROMTOOL" check rules deploy/prometheus/alerts.yml >&2
say "alert rules: checked"

# 4. The image. Podman settings that work in this sandbox (the defaults do not).
export CONTAINERS_CONF="$WORK/containers.conf" CONTAINERS_STORAGE_CONF="$WORK/storage.conf"
cat >"$CONTAINERS_CONF" <<EOF
[containers]
default_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
EOF
cat >"$CONTAINERS_STORAGE_CONF" <<EOF
[storage]
driver = "overlay"
graphroot = "$WORK/storage"
runroot = "$WORK/run"
EOF
PODMAN_READY=1
BASE_TAR="$CACHE/images/debian-bookworm-minbase.tar"
if [[ ! -s "$BASE_TAR" ]]; then
  say "making a Debian 12 base image with debootstrap (once; cached in $BASE_TAR)"
  mkdir -p "$(dirname "$BASE_TAR")"
  debootstrap --variant=minbase bookworm "$WORK/rootfs" >"$WORK/debootstrap.log" 2>&1 \
    || { tail -20 "$WORK/debootstrap.log" >&2; die "debootstrap"; }
  tar -C "$WORK/rootfs" -c . >"$BASE_TAR.tmp" && mv "$BASE_TAR.tmp" "$BASE_TAR"
  rm -rf "$WORK/rootfs"
fi
podman import -q "$BASE_TAR" localhost/debian-bookworm-minbase:latest >/dev/null
podman build -q --format docker --build-arg BASE_IMAGE=localhost/debian-bookworm-minbase:latest \
  -f deploy/Dockerfile -t localhost/logsieve:latest . >/dev/null
say "image built: $(podman image inspect localhost/logsieve:latest --format '{{.Size}}' | awk '{printf "%.0f MB", $1/1e6}')"

mkdir -p "$WORK/applogs"
for i in $(seq 1 20); do echo "User User$i logged in." >>"$WORK/applogs/app.log"; done
chmod -R a+rX "$WORK/applogs"
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
podman run -d --name logsieve-deploy-test -p "127.0.0.1:$PORT:9598" \
  -v "$WORK/applogs:/var/log/app:ro" localhost/logsieve:latest >/dev/null 2>"$WORK/run.log"
for _ in $(seq 1 60); do
  curl -fsS "http://127.0.0.1:$PORT/health" >/dev/null 2>&1 && break
  sleep 1
done
curl -fsS "http://127.0.0.1:$PORT/health" >/dev/null || { podman logs logsieve-deploy-test >&2; die "/health on the published port"; }
for _ in $(seq 1 60); do
  [[ "$(podman logs logsieve-deploy-test 2>/dev/null | grep -c '"label":"User Action"')" -ge 20 ]] && break
  sleep 1
done
labelled=$(podman logs logsieve-deploy-test 2>/dev/null | grep -c '"label":"User Action"' || true)
[[ "$labelled" -ge 20 ]] || { podman logs logsieve-deploy-test >&2; die "the container labelled $labelled of 20 lines"; }
uid=$(podman exec logsieve-deploy-test id -u)
[[ "$uid" != 0 ]] || die "the container runs as root"
podman healthcheck run logsieve-deploy-test 2>>"$WORK/run.log" || die "the image's HEALTHCHECK fails"
podman rm -f logsieve-deploy-test >/dev/null
say "image: labels a mounted log folder, /health on a published port, HEALTHCHECK passes, runs as uid $uid"

# 5. The sidecar manifest, played by podman. Podman 4.3 (Debian 12) crashes on secret volumes
#    in `kube play` (a nil pointer in VolumeFromSecret), so the Secret and its volume are left
#    out here: without its key file the LLM tier is off, which changes nothing else. It knows
#    no namespaces or nodes either (`metadata.namespace` and `spec.nodeName` become values),
#    and applies no fsGroup (the stand-in app writes as root).
"$VENV/bin/python" - deploy/kubernetes/sidecar.yaml "$WORK/sidecar.yaml" <<'PY'
import sys, yaml
docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d and d.get("kind") != "Secret"]
for d in docs:
    spec = d.get("spec", {}).get("template", {}).get("spec", {})
    for v in spec.get("volumes", []):
        if "secret" in v:
            del v["secret"]
            v["emptyDir"] = {}
    # Podman has no namespaces or nodes: those two downward-API fields become plain values.
    # Nor does it apply fsGroup, which makes the emptyDir writable by the app in Kubernetes:
    # the stand-in app writes as root here.
    for c in spec.get("containers", []):
        if c["name"] == "app":
            c["securityContext"] = {"runAsUser": 0, "runAsNonRoot": False}
        # Played without a network (nothing published here): no port mappings.
        c.pop("ports", None)
        for probe in ("livenessProbe", "readinessProbe"):
            if probe in c:
                c[probe]["httpGet"]["port"] = 9598
        for e in c.get("env", []):
            path = e.get("valueFrom", {}).get("fieldRef", {}).get("fieldPath")
            if path in ("metadata.namespace", "spec.nodeName"):
                del e["valueFrom"]
                e["value"] = "podman"
yaml.safe_dump_all(docs, open(sys.argv[2], "w"))
PY
# Without a network: nothing is published on this machine, and the sidecar needs none here.
podman kube play --network none "$WORK/sidecar.yaml" >"$WORK/play.log" 2>&1 || { cat "$WORK/play.log" >&2; podman ps -a >&2; for c in $(podman ps -a --format "{{.Names}}"); do echo "== $c" >&2; podman logs "$c" 2>&1 | tail -5 >&2; done; die "podman kube play"; }
container=$(podman ps --format '{{.Names}}' | grep -- '-logsieve$' | head -n1)
[[ -n "$container" ]] || { podman ps -a >&2; die "no logsieve container in the played pod"; }
for _ in $(seq 1 90); do
  [[ "$(podman logs "$container" 2>/dev/null | grep -c '"pod":')" -ge 4 ]] && break
  sleep 1
done
records=$(podman logs "$container" 2>/dev/null | grep '"pod":' || true)
[[ "$(grep -c . <<<"$records")" -ge 4 ]] || { podman logs "$container" >&2; die "no records with the pod's fields from the sidecar"; }
grep -q '"label":"User Action"' <<<"$records" || die "the sidecar's records are not labelled"
podman kube down "$WORK/sidecar.yaml" >/dev/null 2>&1 || true
say "sidecar manifest: played; the app's lines come out labelled, with the pod's fields"
say "all deploy checks passed"
