#!/bin/bash
# The two set-up commands install what the build needs: every library a
# meson.build requires (dependency('NAME') without required : false, and
# cc.find_library('NAME') likewise) belongs to a Debian package that both
# mount-scripts/quickstart and tests/run list, so a fresh machine can build
# with either. Each library is traced to its package through dpkg -S of the
# file pkg-config (or the linker) finds for it.
#
#   packages.sh REPO
set -u
repo=$1
n=0
fails=0
ok() { n=$((n + 1)); if [ "$1" -eq 0 ]; then echo "ok $n - $2"; else echo "not ok $n - $2"; fails=$((fails + 1)); fi; }

if ! command -v dpkg-query >/dev/null 2>&1; then
	echo "1..0 # SKIP not a Debian system (no dpkg)"
	exit 0
fi

# The package lists, one name a line.
quick=$(sed -n '/^packages="/,/"$/p' "$repo/mount-scripts/quickstart" | tr -d '"' | sed 's/^packages=//' | tr ' \t' '\n\n' | grep -v '^$')
run=$(sed -n '/^packages=(/,/)$/p' "$repo/tests/run" | tr -d '()' | sed 's/^packages=//' | tr ' \t' '\n\n' | grep -v '^$')

# "kind name" of every required library, from every meson.build.
libs=$(find "$repo" -name meson.build -not -path '*/build*' -not -path '*/node_modules/*' -print0 |
	xargs -0 grep -ho "\(dependency\|find_library\)('[^']*'[^)]*)" |
	grep -v "required : false" |
	sed -E "s/^dependency\('([^']*)'.*/pc \1/; s/^find_library\('([^']*)'.*/lib \1/" | sort -u)

count=$(printf '%s\n' "$libs" | grep -vc '^pc threads$')
echo "1..$((2 * count))"
while read -r kind name; do
	[ "$kind $name" = "pc threads" ] && continue # the C library's
	if [ "$kind" = pc ]; then
		file=$(pkg-config --variable=pcfiledir "$name" 2>/dev/null)/$name.pc
	else
		file=$(gcc -print-file-name="lib$name.so")
	fi
	# The directory resolved, not the file: a library's unversioned .so is
	# a link the -dev package owns.
	file=$(readlink -f "$(dirname "$file")")/$(basename "$file")
	pkg=$(dpkg -S "$file" 2>/dev/null | head -n 1 | cut -d: -f1)
	if [ -z "$pkg" ]; then
		ok 1 "$name: no installed package holds $file"
		ok 1 "$name: (not traced)"
		continue
	fi
	printf '%s\n' "$quick" | grep -qx "$pkg"
	ok $? "$name ($pkg) is in mount-scripts/quickstart's packages"
	printf '%s\n' "$run" | grep -qx "$pkg"
	ok $? "$name ($pkg) is in tests/run's packages"
done <<<"$libs"
exit $((fails > 0))
