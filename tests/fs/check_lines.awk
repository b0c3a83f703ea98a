# check_lines.awk - check lines written by fs_writer.
#
#   awk -f check_lines.awk [-v want="TAG:COUNT TAG:COUNT"] FILE
#
# Every line must be exactly what fs_writer writes for its tag and number;
# per tag, numbers must be 0, 1, 2, ... in order without gap or repeat.
# Lines whose tag is "-" (other content) are skipped. Prints "bad N: line"
# for the first few problems and a summary "TAG count" per tag; exits 1 on
# any problem or when a wanted count is not met.
# Line i's filler: (i * 7) % 200 letters of the alphabet from letter i % 26
# on, cut from ten alphabets end to end (one substr, not a letter at a time).
BEGIN {
	letters = "abcdefghijklmnopqrstuvwxyz"
	letters = letters letters letters letters letters letters letters letters letters letters
}
function expect(tag, i) {
	return tag " " i " " substr(letters, i % 26 + 1, (i * 7) % 200)
}
{
	tag = $1
	i = $2 + 0
	if ($0 != expect(tag, i) || i != next_i[tag] + 0) {
		if (bad++ < 5)
			print "bad " NR ": " substr($0, 1, 80)
		next
	}
	next_i[tag] = i + 1
}
END {
	for (t in next_i)
		print t, next_i[t]
	n = split(want, w, " ")
	for (k = 1; k <= n; k++) {
		split(w[k], tc, ":")
		if (next_i[tc[1]] + 0 != tc[2] + 0) {
			print "want " tc[2] " lines of " tc[1] ", have " next_i[tc[1]] + 0
			bad++
		}
	}
	exit bad > 0
}
