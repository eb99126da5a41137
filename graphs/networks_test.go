package graphs

import (
	"testing"

	tf "github.com/wamuir/graft/tensorflow"
	"github.com/wamuir/graft/tensorflow/op"

	"github.com/mnistgan/mnistgan/tfops"
)

// build makes a graph with one network in the given mode and returns its layers.
func build(t *testing.T, training bool, net func(c tfops.Ctx, in tf.Output) []Layer, inShape ...int64) (*tfops.Vars, []Layer, *op.Scope) {
	t.Helper()
	root := op.NewScope()
	vars := tfops.NewVars(root, 1)
	step := op.Const(root.SubScope("step"), int64(0))
	in := op.Placeholder(root.SubScope("input"), tf.Float, op.PlaceholderShape(tf.MakeShape(inShape...)))
	layers := net(tfops.NewCtx(root.SubScope("net"), tfops.NewPass("test", vars, training, step), "net"), in)
	if err := tfops.Err(root); err != nil {
		t.Fatalf("build: %v", err)
	}
	return vars, layers, root
}

func discriminatorLayers(c tfops.Ctx, in tf.Output) []Layer { return Discriminator(c, in).Layers }
func generatorLayers(c tfops.Ctx, in tf.Output) []Layer     { return Generator(c, in).Layers }
func classifierLayers(c tfops.Ctx, in tf.Output) []Layer    { return Classifier(c, in).Layers }

func TestLayerShapesFollowTheSeedTables(t *testing.T) {
	tests := []struct {
		name   string
		net    func(c tfops.Ctx, in tf.Output) []Layer
		input  []int64
		shapes map[string][]int64
	}{
		{"discriminator", discriminatorLayers, []int64{-1, 28, 28, 1}, map[string][]int64{
			"conv1":   {-1, 14, 14, 64},
			"conv2":   {-1, 7, 7, 128},
			"conv3":   {-1, 4, 4, 256},
			"conv4":   {-1, 4, 4, 512},
			"flatten": {-1, 8192},
			"dense":   {-1, 1},
			"sigmoid": {-1, 1},
		}},
		{"generator", generatorLayers, []int64{-1, 100}, map[string][]int64{
			"dense":         {-1, 12544},
			"dense_bn_relu": {-1, 12544},
			"reshape":       {-1, 7, 7, 256},
			"dropout":       {-1, 7, 7, 256},
			"up1":           {-1, 14, 14, 256},
			"deconv1":       {-1, 14, 14, 128},
			"up2":           {-1, 28, 28, 128},
			"deconv2":       {-1, 28, 28, 64},
			"deconv3":       {-1, 28, 28, 32},
			"deconv4":       {-1, 28, 28, 1},
			"sigmoid":       {-1, 28, 28, 1},
		}},
		{"classifier", classifierLayers, []int64{-1, 28, 28, 1}, map[string][]int64{
			"conv1":    {-1, 28, 28, 32},
			"pool1":    {-1, 14, 14, 32},
			"conv2":    {-1, 14, 14, 64},
			"pool2":    {-1, 7, 7, 64},
			"flatten":  {-1, 3136},
			"features": {-1, 128},
			"dropout":  {-1, 128},
			"logits":   {-1, 10},
			"softmax":  {-1, 10},
		}},
	}
	for _, tt := range tests {
		for _, training := range []bool{true, false} {
			_, layers, _ := build(t, training, tt.net, tt.input...)
			if len(layers) != len(tt.shapes) {
				t.Errorf("%s: %d layers, want %d", tt.name, len(layers), len(tt.shapes))
			}
			for _, l := range layers {
				want, ok := tt.shapes[l.Name]
				if !ok {
					t.Errorf("%s: unexpected layer %s", tt.name, l.Name)
					continue
				}
				if got := tfops.Shape(l.Output); tfops.FormatShape(got) != tfops.FormatShape(want) {
					t.Errorf("%s (training=%v) %s: shape %s, want %s", tt.name, training, l.Name, tfops.FormatShape(got), tfops.FormatShape(want))
				}
			}
		}
	}
}

func TestParameterCountsMatchKeras(t *testing.T) {
	dv, _, _ := build(t, true, discriminatorLayers, -1, 28, 28, 1)
	if got := tfops.CountParams(dv.All()); got != 4311553 {
		t.Errorf("discriminator: %d parameters, want 4,311,553", got)
	}
	gv, _, _ := build(t, true, generatorLayers, -1, 100)
	if got := tfops.CountParams(gv.All()); got != 2394241 {
		t.Errorf("generator: %d parameters, want 2,394,241", got)
	}
	if got := tfops.CountParams(tfops.Trainable(gv.All())); got != 2368705 {
		t.Errorf("generator: %d trainable parameters, want 2,368,705", got)
	}
	if got := tfops.CountParams(gv.All()) - tfops.CountParams(tfops.Trainable(gv.All())); got != 25536 {
		t.Errorf("generator: %d batch-norm statistics, want 25,536", got)
	}
	// conv1 5*5*1*32+32, conv2 5*5*32*64+64, features 3136*128+128, logits 128*10+10.
	cv, _, _ := build(t, true, classifierLayers, -1, 28, 28, 1)
	if got, want := tfops.CountParams(cv.All()), int64(832+51264+401536+1290); got != want {
		t.Errorf("classifier: %d parameters, want %d", got, want)
	}
}
