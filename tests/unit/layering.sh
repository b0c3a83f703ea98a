#!/bin/bash
# layering.sh SOURCE_ROOT - the dependency arrows between the folders of the
# tree run one way (design.md: the front-ends meet only in the engine):
#
#   folder    may include headers of
#   wal/      wal/                        (the engine knows no front-end)
#   search/   search/ wal/                (full-text search, on the engine;
#                                          the engine calls it only through
#                                          its segment hook)
#   fs/       fs/ search/ wal/            (the FUSE front-end knows no Kafka)
#   kafka/    kafka/ wal/                 (the Kafka listener knows no FUSE)
#   cli/      cli/ search/ cold/ wal/     (the CLI opens the engine directly;
#                                          verify --remote attaches cold/)
#             and kafka/users.h only      (`chronik user add` writes the Kafka
#                                          users file; users.c needs only OpenSSL)
#   cold/     cold/ wal/                  (the object-store client fills the
#                                          engine's hook table, wal/remote.h;
#                                          the engine never includes it)
#   daemon/   daemon/ fs/ kafka/ search/ cold/ wal/ (chronikd puts them together)
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

folders=(wal search fs kafka cli cold daemon)
declare -A allowed=(
	[wal]="wal"
	[search]="search wal"
	[fs]="fs search wal"
	[kafka]="kafka wal"
	[cli]="cli search cold wal"
	[cold]="cold wal"
	[daemon]="daemon fs kafka search cold wal"
)
# Single headers a folder may include beyond its folders.
declare -A allowed_files=([cli]="kafka/users.h")
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
				*)
					case " ${allowed_files[$folder]:-} " in
					*" $at/$name "*) ;;
					*) bad+=("$rel includes \"$name\" ($at/)") ;;
					esac
					;;
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
	extra=${allowed_files[$folder]:+ (and ${allowed_files[$folder]})}
	ok "${#bad[@]}" "$folder/ ($nfiles files) includes only ${allowed[$folder]// /, }$extra" \
		"headers${fuse_ok[$folder]:+ and FUSE}"
done
done_testing
