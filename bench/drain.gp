# bench/drain.gp - bench/drain_rss.png: RSS over time since SIGTERM, one line per allocator, from
# the data bench/drain.sh writes (one gnuplot data block per allocator: "ms<TAB>MiB", titled by
# its first line). Usage: gnuplot -e "datafile='D'; outfile='O'; nblocks=N; exit_ms=E; heading='T'" bench/drain.gp
set terminal pngcairo size 1100,650 font ",11" noenhanced
set output outfile
set title heading
set xlabel "ms since SIGTERM"
set ylabel "RSS (MiB)"
set grid
set key outside right top
set xrange [-100:*]
set yrange [0:*]
set arrow from 0, graph 0 to 0, graph 1 nohead dashtype 2 lc rgb "gray"
set arrow from exit_ms, graph 0 to exit_ms, graph 1 nohead dashtype 2 lc rgb "gray"
set label "SIGTERM" at 5, graph 0.97
set label "service calls exit()" at exit_ms + 5, graph 0.97
plot for [i=0:nblocks-1] datafile index i using 1:2 with lines lw 2 title columnheader(1)
