# tests/hostile/runtime.pl - a Perl service under LD_PRELOAD=libtcm.so with a
# $SIG{TERM} handler that spawns children: system("/bin/true"), backticks, and
# fork (the child allocates and exits 0). After each kind of child it sends
# itself SIGTERM, which must run the handler; then it prints "READY <pid>" and
# waits (at most 30 s) for the SIGTERM from runtimes.sh, prints
# "HANDLER RAN <n>" and exits 0. It first proves it runs under tcm: the library
# is in /proc/self/maps (required absent with HOSTILE_BASELINE=1).
use strict;
use warnings;
use POSIX ();
use Time::HiRes qw(sleep time);

$| = 1;
my $received = 0;

sub fail {
	print "FAIL: runtime.pl: @_\n";
	exit 1;
}

sub wait_for {
	my ($count, $seconds) = @_;
	my $deadline = time + $seconds;
	sleep 0.01 while $received < $count && time < $deadline;
	return $received >= $count;
}

my $lib_name = $ENV{TCM_TESTING_EXPECT_LIB_NAME} || "libtcm.so";
open(my $maps, "<", "/proc/self/maps") or fail("open /proc/self/maps: $!");
my $mapped = grep { m{/\Q$lib_name\E$} } <$maps>;
close($maps);
if (($ENV{HOSTILE_BASELINE} // "") eq "1") {
	fail("HOSTILE_BASELINE=1 but $lib_name is mapped") if $mapped;
	print "runtime.pl: baseline run, no tcm\n";
} else {
	fail("not running under tcm: $lib_name is not in /proc/self/maps") unless $mapped;
	print "runtime.pl: running under $lib_name\n";
}

# SIGTERM to itself runs the handler (within 5 s) after each kind of child.
sub check_delivery {
	my ($after) = @_;
	my $want = $received + 1;
	kill 'TERM', $$;
	wait_for($want, 5) or fail("after $after, kill TERM => \$\$ did not run the handler within 5 s");
}

$SIG{TERM} = sub { $received++ };
check_delivery('$SIG{TERM} = sub');
for (1 .. 3) {
	system("/bin/true") == 0 or fail("system(/bin/true): status $?");
}
check_delivery('system("/bin/true")');
my $echoed = `/bin/echo backticks`;
fail("backticks returned '$echoed' (status $?)") unless $? == 0 && $echoed eq "backticks\n";
check_delivery('backticks');
my $pid = fork();
fail("fork: $!") unless defined $pid;
if ($pid == 0) {
	my %data = map { $_ => "x" x ($_ % 300) } 1 .. 20000;
	POSIX::_exit(scalar(keys %data) == 20000 ? 0 : 1);
}
waitpid($pid, 0);
fail("fork child ended with status $?") unless $? == 0;
check_delivery('fork');
my $handled = $received;
print "READY $$\n";
wait_for($handled + 1, 30) or fail("the SIGTERM from the test driver did not run the handler within 30 s");
print "HANDLER RAN $received\n";
exit 0;
