#!/bin/bash
# layering.sh SOURCE_ROOT - the dependency arrows between the folders of the
# tree run one way (design.md: the front-ends meet only in the engine):
#
#   folder    may include headers of
#   wal/      wal/                        (the engine knows no front-end)
#   fs/       fs/ wal/                    (the FUSE front-end knows no Kafka)
#   kafka/    kafka/ wal/                 (the Kafka listener knows no FUSE)
#   cli/      cli/ cold/ wal/             (the CLI opens the engine directly;
#                                          verify --remote attaches cold/)
#   cold/     cold/ wal/                  (the object-store client fills the
#                                          engine's hook table, wal/remote.h;
#                                          the engine never includes it)
#   daemon/   daemon/ fs/ kafka/ cold/ wal/ (chronikd puts them together)
#
# and FUSE's own headers (<fuse*.h>) only in fs/ and daemon/.
#
# meson enforces most of it (a folder's library gets only the include
# directories of what it may use); this test also catches what meson cannot:
# a relative path such as "../kafka/listener.h", and a header found through
# a directory it should not have been given. A quoted include resolves as
# the compiler resolves it: beside the including file first, then in the
# folders above; the folder where it is found must be one the table allows.
set -u
root=${1:?usage: layering.sh SOURCE_ROOT}
. "$(dirname "${BASH_SOURCE[0]}")/../lib/tap.sh"

folders=(wal fs kafka cli cold daemon)
declare -A allowed=(
	[wal]="wal"
	[fs]="fs wal"
	[kafka]="kafka wal"
	[cli]="cli cold wal"
	[cold]="cold wal"
	[daemon]="daemon fs kafka cold wal"
)
declare -A fuse_ok=([fs]=1 [daemon]=1)
quoted_re='^[[:space:]]*#[[:space:]]*include[[:space:]]*"([^"]+)"'
fuse_re='^[[:space:]]*#[[:space:]]*include[[:space:]]*<(fuse[^>]*)>'

# The folder (one of $folders) holding the header a quoted include names,
# or nothing when it is none of them (a system header).
resolve() {
	local from=$1 name=$2 d f
	if [ -f "$root/$from/$name" ]; then
		f=$(realpath -m "$root/$from/$name")
	else
		for d in "${folders[@]}"; do
			if [ -f "$root/$d/$name" ]; then
				f=$(realpath -m "$root/$d/$name")
				break
			fi
		done
	fi
	[ -n "${f:-}" ] || return 0
	f=${f#"$(realpath -m "$root")/"}
	echo "${f%%/*}"
}

for folder in "${folders[@]}"; do
	[ -d "$root/$folder" ] || {
		ok 1 "$folder/ exists"
		continue
	}
	bad=()
	nfiles=0
	for src in "$root/$folder"/*.[ch]; do
		[ -f "$src" ] || continue
		nfiles=$((nfiles + 1))
		rel=${src#"$root/"}
		while IFS= read -r line; do
			if [[ $line =~ $quoted_re ]]; then
				name=${BASH_REMATCH[1]}
				at=$(resolve "$folder" "$name")
				[ -n "$at" ] || continue
				case " ${allowed[$folder]} " in
				*" $at "*) ;;
				*) bad+=("$rel includes \"$name\" ($at/)") ;;
				esac
			elif [[ $line =~ $fuse_re ]]; then
				[ -n "${fuse_ok[$folder]:-}" ] ||
					bad+=("$rel includes <${BASH_REMATCH[1]}>")
			fi
		done <"$src"
	done
	for b in "${bad[@]}"; do
		diag "$b"
	done
	ok "${#bad[@]}" "$folder/ ($nfiles files) includes only ${allowed[$folder]// /, }" \
		"headers${fuse_ok[$folder]:+ and FUSE}"
done
done_testing
