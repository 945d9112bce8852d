#!/usr/bin/env bash
# Builds, with real tools, one OCI image layout per row of the spec's
# "Typical images" table, for validator/tests/it/recommend.rs:
#
#   OUTDIR/base          debootstrap --variant=minbase bookworm, packed by umoci
#   OUTDIR/base-apt      base + apt-get update, clean and the usual removal of
#                        the lists: what apt leaves in any Debian image that ran
#                        it (its private download directory, 0700 _apt:root)
#   OUTDIR/service       base + an account svc (999) owning /var/lib/svc (0700)
#   OUTDIR/user          base + an account app (1000), config.User 1000
#   OUTDIR/setgid-dirs   a few files and /var/mail, /var/local (2775, 0:8, 0:50)
#   OUTDIR/unprivileged  built by Charliecloud's ch-image as user 65534 FROM
#                        base, pushed to a local registry, copied by skopeo
#
# Each layout holds one image tagged with its directory's name. No image
# declares the id-flattening annotation. An image whose layout exists is
# not rebuilt; a layout appears only once complete (built aside, renamed).
# Runs as root (debootstrap, and owners other than our own); needs the
# Debian mirror. The tool versions are printed and kept in OUTDIR/versions.txt.
#
# usage: scripts/real-images.sh OUTDIR
set -euo pipefail

die() {
  echo "error: $*" >&2
  exit 1
}
[[ $# == 1 ]] || die "usage: $0 OUTDIR"
[[ $(id -u) == 0 ]] || die "$0 must run as root (debootstrap, chown to other owners)"
repo=$(cd "$(dirname "$0")/.." && pwd)
mirror=${SINGLE_ID_DEBIAN_MIRROR:-http://deb.debian.org/debian}
suite=bookworm
# The ordinary user that runs ch-image.
nobody=65534

# command:debian-package
required=(debootstrap:debootstrap umoci:umoci skopeo:skopeo ch-image:charliecloud
  docker-registry:docker-registry curl:curl openssl:openssl /usr/bin/python3:python3
  setpriv:util-linux flock:util-linux useradd:passwd groupadd:passwd chroot:coreutils)
missing=()
for pair in "${required[@]}"; do
  command -v "${pair%%:*}" >/dev/null 2>&1 || missing+=("${pair%%:*} (Debian package ${pair#*:})")
done
# ch-image runs on the system Python, which must have its parser.
if [[ -x /usr/bin/python3 ]] && ! /usr/bin/python3 -c 'import lark' 2>/dev/null; then
  missing+=("the lark module of /usr/bin/python3 that ch-image needs (Debian package python3-lark)")
fi
if ((${#missing[@]})); then
  printf 'error: missing: %s\n' "${missing[@]}" >&2
  exit 1
fi

mkdir -p "$1"
out=$(cd "$1" && pwd)
# One build at a time per OUTDIR (test binaries may run in parallel).
exec 9>"$out/.lock"
flock 9

versions() {
  echo "debootstrap $(dpkg-query -W -f '${Version}' debootstrap 2>/dev/null || echo '?') ($suite from $mirror)"
  umoci --version
  skopeo --version
  echo "ch-image $(USER=root /usr/bin/python3 "$(command -v ch-image)" --version 2>&1)"
  echo "docker-registry $(dpkg-query -W -f '${Version}' docker-registry 2>/dev/null || echo '?')"
  echo "useradd (passwd) $(dpkg-query -W -f '${Version}' passwd 2>/dev/null || echo '?')"
}
versions | tee "$out/versions.txt"

work=$(mktemp -d "$out/.work.XXXXXX")
started_registry=
ch_dir=
# (set -e holds in the trap too: every step here must not fail.)
cleanup() {
  if [[ -n $started_registry ]]; then
    SINGLE_ID_REGISTRY_DIR=$started_registry bash "$repo/conformance/registry.sh" stop || true
  fi
  if [[ -n $ch_dir ]]; then
    rm -rf "$ch_dir" || true
  fi
  # Leftover mounts would make rm -rf wander into /proc or /sys.
  if [[ -d $work ]]; then
    { grep -o " $work/[^ ]*" /proc/mounts || true; } | sort -r | while read -r m; do umount -l "$m" || true; done
    rm -rf "$work" || true
  fi
}
trap cleanup EXIT

# built NAME: the layout exists (and was complete when it was renamed there).
built() {
  if [[ -f $out/$1/index.json ]]; then
    echo "$1: exists, kept"
    return 0
  fi
  rm -rf "$out/.$1.tmp"
  echo "$1: building"
  return 1
}

# finish NAME: removes unreferenced blobs and moves the layout into place.
finish() {
  umoci gc --layout "$out/.$1.tmp"
  mv "$out/.$1.tmp" "$out/$1"
  echo "$1: done"
}

# from_base NAME BUNDLE: a copy of base retagged NAME, unpacked to BUNDLE.
from_base() {
  cp -a "$out/base" "$out/.$1.tmp"
  umoci tag --image "$out/.$1.tmp:base" "$1"
  umoci rm --image "$out/.$1.tmp:base"
  umoci unpack --image "$out/.$1.tmp:$1" "$2"
}

build_base() {
  built base && return
  local tmp=$out/.base.tmp rootfs=$work/base-rootfs bundle=$work/base-bundle
  debootstrap --variant=minbase "$suite" "$rootfs" "$mirror" >"$work/debootstrap.log" 2>&1 || {
    tail -n 30 "$work/debootstrap.log" >&2
    die "debootstrap failed (log above)"
  }
  umoci init --layout "$tmp"
  umoci new --image "$tmp:base"
  umoci unpack --image "$tmp:base" "$bundle"
  # Same filesystem: the rename keeps owners, modes, xattrs and devices.
  rm -rf "$bundle/rootfs"
  mv "$rootfs" "$bundle/rootfs"
  umoci repack --history.created_by "debootstrap --variant=minbase $suite" --image "$tmp:base" "$bundle"
  finish base
}

build_base_apt() {
  built base-apt && return
  local tmp=$out/.base-apt.tmp bundle=$work/base-apt-bundle
  from_base base-apt "$bundle"
  # As a Dockerfile's RUN would, in the image's own root (its sources.list
  # names the mirror debootstrap used; its resolv.conf is the host's).
  local cmd='apt-get update -q && apt-get clean && rm -rf /var/lib/apt/lists/*'
  chroot "$bundle/rootfs" /bin/sh -c "$cmd" >"$work/apt.log" 2>&1 || {
    tail -n 30 "$work/apt.log" >&2
    die "apt-get in the base image failed (log above)"
  }
  umoci repack --history.created_by "$cmd" --image "$tmp:base-apt" "$bundle"
  finish base-apt
}

build_service() {
  built service && return
  local tmp=$out/.service.tmp bundle=$work/service-bundle
  from_base service "$bundle"
  local r=$bundle/rootfs
  groupadd --root "$r" --system --gid 999 svc
  useradd --root "$r" --system --uid 999 --gid 999 --home-dir /var/lib/svc --no-create-home \
    --shell /usr/sbin/nologin svc
  install -d -o 999 -g 999 -m 0700 "$r/var/lib/svc"
  printf 'state\n' >"$r/var/lib/svc/state"
  chown 999:999 "$r/var/lib/svc/state"
  chmod 0600 "$r/var/lib/svc/state"
  mkdir -p "$r/usr/local/bin"
  cat >"$r/usr/local/bin/svc-start" <<'SH'
#!/bin/sh
# Starts as root, then runs the service as svc, which owns /var/lib/svc.
exec setpriv --reuid=svc --regid=svc --init-groups /bin/sh -c 'cd /var/lib/svc && exec sleep infinity'
SH
  chown 0:0 "$r/usr/local/bin/svc-start"
  chmod 0755 "$r/usr/local/bin/svc-start"
  umoci repack --history.created_by "useradd svc (999); /var/lib/svc 0700 svc:svc; svc-start" \
    --image "$tmp:service" "$bundle"
  umoci config --image "$tmp:service" --config.entrypoint /usr/local/bin/svc-start
  finish service
}

build_user() {
  built user && return
  local tmp=$out/.user.tmp bundle=$work/user-bundle
  from_base user "$bundle"
  useradd --root "$bundle/rootfs" --uid 1000 --user-group --home-dir /home/app --no-create-home \
    --shell /bin/sh app
  umoci repack --history.created_by "useradd app (1000)" --image "$tmp:user" "$bundle"
  umoci config --image "$tmp:user" --config.user 1000
  finish user
}

build_setgid_dirs() {
  built setgid-dirs && return
  local tmp=$out/.setgid-dirs.tmp bundle=$work/setgid-bundle
  umoci init --layout "$tmp"
  umoci new --image "$tmp:setgid-dirs"
  umoci unpack --image "$tmp:setgid-dirs" "$bundle"
  local r=$bundle/rootfs
  mkdir -p "$r/etc" "$r/usr/bin" "$r/var"
  printf 'setgid-dirs\n' >"$r/etc/hostname"
  printf 'ID=single-id-test\n' >"$r/etc/os-release"
  printf '#!/bin/sh\necho hello\n' >"$r/usr/bin/hello"
  chmod 0755 "$r/usr/bin/hello"
  mkdir "$r/var/mail" "$r/var/local"
  chown -R 0:0 "$r/etc" "$r/usr" "$r/var"
  # Owner first: chown may clear set-ID bits, chmod sets them after.
  chown 0:8 "$r/var/mail"
  chown 0:50 "$r/var/local"
  chmod 2775 "$r/var/mail" "$r/var/local"
  umoci repack --history.created_by "files; var/mail 2775 0:8; var/local 2775 0:50" \
    --image "$tmp:setgid-dirs" "$bundle"
  finish setgid-dirs
}

build_unprivileged() {
  built unprivileged && return
  local tmp=$out/.unprivileged.tmp
  # Everything ch-image touches belongs to the ordinary user, outside
  # OUTDIR, which that user may not be able to reach.
  local w
  w=$(mktemp -d "${TMPDIR:-/tmp}/single-id-ch-image.XXXXXX")
  ch_dir=$w
  mkdir "$w/home" "$w/ctx"

  # The registry of the conformance suite (HTTPS, its own certificate):
  # the one running, or one of our own, its certificate and data in $w,
  # stopped on exit. It must not inherit the lock (fd 9).
  if ! curl -skf https://127.0.0.1:5000/v2/ >/dev/null 2>&1; then
    started_registry=$w/registry
    export SINGLE_ID_REGISTRY_DIR=$started_registry
  fi
  eval "$(bash "$repo/conformance/registry.sh" 9>&-)"
  local reg=$SINGLE_ID_REGISTRY ca=$SINGLE_ID_REGISTRY_CA
  # Names of their own per run, so runs never see each other.
  local ns
  ns=single-id-real/run$(basename "$w" | tr -cd '[:alnum:]' | tr '[:upper:]' '[:lower:]')
  skopeo copy -q --dest-tls-verify=false "oci:$out/base:base" "docker://$reg/$ns/base:latest"

  printf 'built by ch-image without privilege\n' >"$w/ctx/motd"
  printf '#!/bin/sh\necho hello\n' >"$w/ctx/hello"
  chmod 0755 "$w/ctx/hello"
  cat >"$w/ctx/Dockerfile" <<DOCKERFILE
FROM $reg/$ns/base:latest
COPY motd /etc/motd
COPY hello /usr/local/bin/hello
DOCKERFILE
  chown "$nobody:$nobody" "$w"
  chown -R "$nobody:$nobody" "$w/home" "$w/ctx"
  chmod 755 "$w"
  ch() {
    setpriv --reuid=$nobody --regid=$nobody --clear-groups \
      env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME="$w/home" USER=nobody REQUESTS_CA_BUNDLE="$ca" \
      /usr/bin/python3 "$(command -v ch-image)" --no-cache --storage "$w/storage" "$@"
  }
  if ! { ch build -t "$ns/unprivileged" -f "$w/ctx/Dockerfile" "$w/ctx" \
    && ch push "$ns/unprivileged" "$reg/$ns/unprivileged:latest"; } >"$work/ch-image.log" 2>&1; then
    tail -n 30 "$work/ch-image.log" >&2
    die "ch-image failed (log above)"
  fi
  { grep -i warning "$work/ch-image.log" || true; } | sed 's/^/ch-image: /'
  skopeo copy -q --src-tls-verify=false "docker://$reg/$ns/unprivileged:latest" "oci:$tmp:unprivileged"
  finish unprivileged
}

build_base
build_base_apt
build_service
build_user
build_setgid_dirs
build_unprivileged
