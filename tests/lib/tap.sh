# tap.sh - TAP output for the shell tests (the shell side of tap.h), sourced
# by each suite's lib.sh.
#
# A test that knows its count says `plan N` first; one that does not lets
# done_testing print the plan after the last test. done_testing ends the
# test: exit 0 when every test passed, else 1.

tap_n=0
tap_failed=0
tap_planned=0

plan() {
	echo "1..$1"
	tap_planned=1
}

# ok STATUS DESCRIPTION: pass when STATUS is 0.
ok() {
	local st=$1
	shift
	tap_n=$((tap_n + 1))
	if [ "$st" -eq 0 ]; then
		echo "ok $tap_n - $*"
	else
		echo "not ok $tap_n - $*"
		tap_failed=$((tap_failed + 1))
	fi
}

diag() { printf '# %s\n' "$*"; }

# Show a file's first lines as TAP diagnostics.
diag_file() { sed -n '1,20s/^/# /p' "$1"; }

done_testing() {
	[ "$tap_planned" -eq 1 ] || echo "1..$tap_n"
	[ "$tap_failed" -eq 0 ]
	exit $?
}
