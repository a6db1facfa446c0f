# bench/plot.gp - the plots of bench/RESULTS.md, from the data bench/report.py writes in datadir:
#   results.png  median time / best median, one bar group per stress workload plus the geometric mean
#   rss.png      median peak RSS / smallest, the same groups plus fragmentation's final RSS
#   sweep.png    thread sweep: million ops per second against threads, one line per allocator
# Usage: gnuplot -e "datadir='DIR'; outdir='bench'; ncols=6" bench/plot.gp   (ncols = 1 + allocators)
if (!exists("datadir")) datadir = '.'
if (!exists("outdir")) outdir = '.'
if (!exists("ncols")) ncols = 6

set terminal pngcairo size 1000,500 noenhanced font ",10"
set datafile separator "\t"
set datafile missing "NaN"

# --- bar charts of ratios to the best (log scale: 2x worse is as far from 1 as 4x is from 2) ---
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.85 border -1
set boxwidth 0.9
set key top left autotitle columnheader
set logscale y 2
set yrange [0.8:*]              # bars start below 1, so the best (1.00) still shows a stub
set grid ytics
set xtics rotate by -25
set arrow 1 from graph 0, first 1 to graph 1, first 1 nohead dashtype 2 lc rgb "#555555"

set output outdir.'/results.png'
set title "tcm bench: median time / best median per workload (lower is faster; 1 = fastest)"
set ylabel "time / best time (log scale)"
plot for [i=2:ncols] datadir.'/time.dat' using i:xtic(1)

set output outdir.'/rss.png'
set title "tcm bench: median peak RSS / smallest per workload (lower is leaner; fragmentation_final = VmRSS at the end)"
set ylabel "peak RSS / smallest (log scale)"
plot for [i=2:ncols] datadir.'/rss.dat' using i:xtic(1)

# --- thread sweep ---
unset arrow 1
set style data linespoints
set xtics norotate
set logscale xy 2
set autoscale y
set key top right autotitle columnheader
set output outdir.'/sweep.png'
set title "tcm bench: thread sweep, larson with fixed total ops (higher is better)"
set xlabel "threads (log scale)"
set ylabel "million ops per second (log scale)"
plot for [i=2:ncols] datadir.'/sweep.dat' using 1:i lw 2 pt 7
