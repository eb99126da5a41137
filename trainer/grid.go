package trainer

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"math"
)

// Grid layout: digits are drawn white on black as in MNIST, separated by a grey
// gutter, and scaled up so a 4x4 grid is comfortable to look at.
const (
	gridGutter = 2
	gridScale  = 2
	gutterGrey = 96
)

// GridPNG renders n square images of side x side pixels (values in [0, 1],
// row-major, one after another) as a grid with cols columns and returns the PNG.
func GridPNG(pixels []float32, n, side, cols int) ([]byte, error) {
	if n <= 0 || side <= 0 || cols <= 0 || len(pixels) != n*side*side {
		return nil, fmt.Errorf("grid: %d values do not make %d images of %dx%d", len(pixels), n, side, side)
	}
	rows := (n + cols - 1) / cols
	cell := side + gridGutter
	w, h := (cols*cell+gridGutter)*gridScale, (rows*cell+gridGutter)*gridScale
	img := image.NewGray(image.Rect(0, 0, w, h))
	for i := range img.Pix {
		img.Pix[i] = gutterGrey
	}
	for k := 0; k < n; k++ {
		x0, y0 := gridGutter+(k%cols)*cell, gridGutter+(k/cols)*cell
		for y := 0; y < side; y++ {
			for x := 0; x < side; x++ {
				v := toByte(pixels[k*side*side+y*side+x])
				for dy := 0; dy < gridScale; dy++ {
					for dx := 0; dx < gridScale; dx++ {
						img.SetGray((x0+x)*gridScale+dx, (y0+y)*gridScale+dy, color.Gray{Y: v})
					}
				}
			}
		}
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		return nil, fmt.Errorf("encode grid: %w", err)
	}
	return buf.Bytes(), nil
}

// toByte maps [0, 1] to 0..255, clamping; NaN becomes 0.
func toByte(v float32) uint8 {
	if !(v > 0) {
		return 0
	}
	if v >= 1 {
		return 255
	}
	return uint8(math.Round(float64(v) * 255))
}
