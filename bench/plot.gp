# bench/plot.gp - bench/results.png: median time ratio to glibc, one bar group per workload and one
# bar per allocator (lower is faster). Data from bench/report.py.
# Usage: gnuplot -e "datafile='plot.dat'; outfile='results.png'; ncols=6" bench/plot.gp
if (!exists("datafile")) datafile = 'plot.dat'
if (!exists("outfile")) outfile = 'results.png'

set terminal pngcairo size 900,500 noenhanced font ",10"
set output outfile
set title "tcm bench: median time ratio to glibc (lower is faster; startup: ratio to no preload)"
set datafile separator "\t"
set datafile missing "NaN"
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.85 border -1
set boxwidth 0.9
set key top left autotitle columnheader
set ylabel "time / glibc time (log scale)"
set logscale y 2            # ratios: 0.5x and 2x are equally far from 1; start-up ratios are large
set yrange [0.125:*]
set grid ytics
set arrow from graph 0, first 1 to graph 1, first 1 nohead dashtype 2 lc rgb "#555555"
if (!exists("ncols")) ncols = 6   # 1 + number of allocators; bench/run passes it
plot for [i=2:ncols] datafile using i:xtic(1)
