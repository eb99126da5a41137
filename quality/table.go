package quality

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

// Column is one set of digits in a table: its heading and its figures.
type Column struct {
	Name   string
	Report Report
}

// WriteTable prints the figures of each column side by side:
//
//	                            generated   real (held out)
//	digits                      10000       10000
//	Inception Score (max 10)    8.912       9.874
//	...
func WriteTable(w io.Writer, cols ...Column) error {
	tw := tabwriter.NewWriter(w, 0, 0, 3, ' ', 0)
	row := func(label string, cell func(r Report) string) {
		cells := []string{label}
		for _, c := range cols {
			cells = append(cells, cell(c.Report))
		}
		fmt.Fprintln(tw, strings.Join(cells, "\t"))
	}
	heads := []string{""}
	for _, c := range cols {
		heads = append(heads, c.Name)
	}
	fmt.Fprintln(tw, strings.Join(heads, "\t"))
	row("digits", func(r Report) string { return fmt.Sprint(r.Images) })
	row("Inception Score (1 to 10, higher is better)", func(r Report) string { return fmt.Sprintf("%.3f", r.InceptionScore) })
	row("Frechet distance to the test set (lower is better)", func(r Report) string { return fmt.Sprintf("%.3f", r.FrechetDistance) })
	row("mean top-class confidence", func(r Report) string { return fmt.Sprintf("%.3f", r.TopConfidence) })
	for digit := 0; digit < 10; digit++ {
		row(fmt.Sprintf("classified as %d", digit), func(r Report) string {
			if digit >= len(r.ClassShares) {
				return "-"
			}
			return fmt.Sprintf("%.1f%%", 100*r.ClassShares[digit])
		})
	}
	return tw.Flush()
}
