#!/usr/bin/env bash
# Proves the release build without publishing anything: validates
# .goreleaser.yaml, builds a snapshot release of every archive and package
# into dist/, then checks what came out — the binary reports the snapshot
# version and this commit, the archives hold what the README promises, the
# packages install the binary, completions and man pages, and checksums.txt
# matches. CI runs it after the tests (.ci/run); anyone can run it in a clone.
#
# Installs the pinned goreleaser with `go install` into the same cached GOBIN
# as .ci/run's staticcheck, only when the cached one is another version.
# Container images need a Docker daemon and are skipped (--skip=docker).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

GORELEASER_VERSION=v2.15.1 # the newest goreleaser v2 that builds with Go 1.26
export GOBIN="${XDG_CACHE_HOME:-$HOME/.cache}/foodpipe-ci/bin"
export PATH="$GOBIN:$PATH"

fail() { echo "release-check: $*" >&2; exit 1; }
step() { printf '\n--> %s\n' "$*"; }

step "goreleaser $GORELEASER_VERSION"
if ! goreleaser --version 2>/dev/null | grep -q "GitVersion: *$GORELEASER_VERSION\$"; then
	go install "github.com/goreleaser/goreleaser/v2@$GORELEASER_VERSION"
fi
goreleaser --version | grep GitVersion

# goreleaser reads the commit, its date and the tags only when
# `git ls-remote --get-url` works; in a snapshot it otherwise carries on with
# the commit "none". A clone without a remote (a worktree, a CI copy) gets
# one for goreleaser's own git calls alone, through git's environment
# config; the repository is not changed.
if [ -z "$(git remote)" ]; then
	export GIT_CONFIG_COUNT=1 GIT_CONFIG_KEY_0=remote.origin.url GIT_CONFIG_VALUE_0=https://github.com/foodpipe/foodpipe
fi

step "goreleaser check"
goreleaser check

# --snapshot implies --skip=announce,publish,validate: nothing leaves the machine.
step "goreleaser release --snapshot --clean --skip=docker,sign"
start=$(date +%s)
goreleaser release --snapshot --clean --skip=docker,sign
echo "snapshot release took $(( $(date +%s) - start ))s"

commit=$(git rev-parse HEAD)
date=$(TZ=UTC git show -s --format=%cd --date=format-local:%Y-%m-%dT%H:%M:%SZ HEAD)
version=$(sed -n 's/.*"version":"\([^"]*\)".*/\1/p' dist/metadata.json)
[ -n "$version" ] || fail "no version in dist/metadata.json"
case "$version" in
*-SNAPSHOT-*) short=${version##*-SNAPSHOT-} ;;
*) fail "version $version is not a snapshot version" ;;
esac
[[ $commit == "$short"* ]] || fail "snapshot version $version does not name commit $commit"

step "the linux/amd64 binary from dist/ knows its version, commit and date"
bin=$(ls dist/foodpipe_linux_amd64*/foodpipe)
json=$("$bin" version --output json)
echo "$json"
field() { sed -n "s/^ *\"$1\": \"\\(.*\\)\",\\{0,1\\}\$/\\1/p" <<<"$json"; }
[ "$(field version)" = "$version" ] || fail "binary says version $(field version), want $version"
[ "$(field commit)" = "$commit" ] || fail "binary says commit $(field commit), want $commit"
[ "$(field date)" = "$date" ] || fail "binary says date $(field date), want the commit date $date"
[ "$("$bin" --version)" = "$("$bin" version)" ] || fail "--version and version disagree"
buildinfo=$(go version -m "$bin")
grep -q 'CGO_ENABLED=0' <<<"$buildinfo" || fail "$bin was built with cgo"
grep -q -- '-trimpath=true' <<<"$buildinfo" || fail "$bin was built without -trimpath"

step "6 archives, 2 deb, 2 rpm, checksums.txt"
archives=()
for os in linux darwin windows; do
	for arch in amd64 arm64; do
		ext=tar.gz
		[ "$os" = windows ] && ext=zip
		f="dist/foodpipe_${version}_${os}_${arch}.$ext"
		[ -f "$f" ] || fail "missing $f"
		archives+=("$f")
	done
done
debs=(dist/*.deb) rpms=(dist/*.rpm)
[ ${#debs[@]} -eq 2 ] && [ -f "${debs[0]}" ] || fail "want 2 .deb packages (amd64, arm64), got: ${debs[*]}"
[ ${#rpms[@]} -eq 2 ] && [ -f "${rpms[0]}" ] || fail "want 2 .rpm packages (x86_64, aarch64), got: ${rpms[*]}"
(cd dist && sha256sum --check --strict checksums.txt) || fail "checksums.txt does not match"
[ "$(wc -l <dist/checksums.txt)" -eq 10 ] || fail "checksums.txt should list 10 files"
ls -l "${archives[@]}" "${debs[@]}" "${rpms[@]}" dist/checksums.txt

# What every archive must hold, relative to the folder it unpacks into.
want=(foodpipe README.md LICENSE NOTICE config.example.yaml
	completions/foodpipe.bash completions/foodpipe.zsh completions/foodpipe.fish
	manpages/foodpipe.1.gz manpages/foodpipe-produce.1.gz manpages/foodpipe-consume.1.gz
	manpages/foodpipe-topics-init.1.gz manpages/foodpipe-db-migrate.1.gz)
has() { # has LISTING ARCHIVE PATH...
	local listing=$1 archive=$2
	shift 2
	for p in "$@"; do
		grep -qx "${p}" <<<"$listing" || fail "$archive lacks $p"
	done
}

step "contents of foodpipe_${version}_linux_amd64.tar.gz"
tgz="dist/foodpipe_${version}_linux_amd64.tar.gz"
listing=$(tar -tzf "$tgz")
echo "$listing"
has "$listing" "$tgz" "${want[@]/#/foodpipe_${version}_linux_amd64/}"
pages=$(grep -c '/manpages/.*\.1\.gz$' <<<"$listing")
[ "$pages" -ge 15 ] || fail "$tgz holds $pages man pages, want one per command"

zip="dist/foodpipe_${version}_windows_amd64.zip"
listing=$(unzip -Z1 "$zip")
want_windows=("${want[@]/#foodpipe/foodpipe.exe}")
has "$listing" "$zip" "${want_windows[@]/#/foodpipe_${version}_windows_amd64/}"

if command -v dpkg-deb >/dev/null; then
	step "contents of ${debs[0]#dist/}"
	listing=$(dpkg-deb --contents "${debs[0]}" | awk '{print $NF}')
	has "$listing" "${debs[0]}" ./usr/bin/foodpipe \
		./usr/share/bash-completion/completions/foodpipe \
		./usr/share/zsh/vendor-completions/_foodpipe \
		./usr/share/fish/vendor_completions.d/foodpipe.fish \
		./usr/share/man/man1/foodpipe.1.gz ./usr/share/man/man1/foodpipe-produce.1.gz \
		./usr/share/doc/foodpipe/copyright
	dpkg-deb --field "${debs[0]}" Package Version Architecture
else
	echo "dpkg-deb not installed: .deb contents not listed"
fi
if command -v rpm >/dev/null; then
	step "contents of ${rpms[0]#dist/}"
	listing=$(rpm --query --list --package "${rpms[0]}")
	has "$listing" "${rpms[0]}" /usr/bin/foodpipe \
		/usr/share/bash-completion/completions/foodpipe \
		/usr/share/zsh/site-functions/_foodpipe \
		/usr/share/fish/vendor_completions.d/foodpipe.fish \
		/usr/share/man/man1/foodpipe.1.gz /usr/share/man/man1/foodpipe-produce.1.gz
else
	echo "rpm not installed: .rpm contents not listed"
fi

echo
echo "release-check: ok ($version, commit $commit)"
