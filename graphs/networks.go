// Package graphs builds the seed's three networks (discriminator, generator and
// the adversarial stack of both) from the tfops layer kit, and wires them into
// the GAN's training graph. Each network reads like its table in SPEC.md.
package graphs

import (
	tf "github.com/wamuir/graft/tensorflow"

	"github.com/mnistgan/mnistgan/tfops"
)

// Sizes fixed by the seed.
const (
	ImageSide = 28  // MNIST digits are 28 x 28 x 1
	NoiseDim  = 100 // the generator's input
)

// Hyper-parameters of the seed's layers.
const (
	kernelSize  = 5
	leakyAlpha  = 0.2
	dropoutRate = 0.4
	bnMomentum  = 0.9
	bnEpsilon   = 1e-3 // Keras' default
)

// Layer is one row of a network's table: its name and output.
type Layer struct {
	Name   string
	Output tf.Output
}

// trace collects a network's layers as it is built.
type trace []Layer

func (t *trace) add(name string, x tf.Output) tf.Output {
	*t = append(*t, Layer{name, x})
	return x
}

// Discriminated is a built discriminator.
type Discriminated struct {
	Logits      tf.Output // N x 1, before the sigmoid (what the loss uses)
	Probability tf.Output // N x 1, in [0, 1]: the image is a real digit
	Layers      []Layer
}

// Discriminator maps images N x 28 x 28 x 1 (pixels in [0, 1]) to the
// probability that each is a real digit. Variables live under c.Path.
func Discriminator(c tfops.Ctx, images tf.Output) *Discriminated {
	var t trace
	x := t.add("conv1", discriminatorBlock(c.In("conv1"), images, 64, 2)) // N x 14 x 14 x 64
	x = t.add("conv2", discriminatorBlock(c.In("conv2"), x, 128, 2))      // N x 7 x 7 x 128
	x = t.add("conv3", discriminatorBlock(c.In("conv3"), x, 256, 2))      // N x 4 x 4 x 256
	// The seed's table says stride 2 but lists 4 x 4 x 512 and a reshape to
	// 8192 = 4*4*512: only stride 1 gives those sizes (see SPEC.md).
	x = t.add("conv4", discriminatorBlock(c.In("conv4"), x, 512, 1)) // N x 4 x 4 x 512
	x = t.add("flatten", tfops.Reshape(c.In("flatten"), x, 4*4*512)) // N x 8192
	logits := t.add("dense", tfops.Dense(c.In("dense"), x, 1))       // N x 1
	p := t.add("sigmoid", tfops.Sigmoid(c.In("sigmoid"), logits))    // N x 1
	return &Discriminated{Logits: logits, Probability: p, Layers: t}
}

// discriminatorBlock is Conv 5x5 (SAME, bias), LeakyReLU 0.2, Dropout 0.4.
func discriminatorBlock(c tfops.Ctx, x tf.Output, filters, stride int64) tf.Output {
	x = tfops.Conv2D(c, x, filters, kernelSize, stride)
	x = tfops.LeakyReLU(c, x, leakyAlpha)
	return tfops.Dropout(c, x, dropoutRate)
}

// Generated is a built generator.
type Generated struct {
	Images tf.Output // N x 28 x 28 x 1, in [0, 1]
	Layers []Layer
}

// Generator maps noise N x 100 (uniform in [-1, 1]) to images N x 28 x 28 x 1.
// Variables live under c.Path.
func Generator(c tfops.Ctx, z tf.Output) *Generated {
	var t trace
	dense := c.In("dense")
	x := t.add("dense", tfops.Dense(dense, z, 7*7*256))                               // N x 12544
	x = t.add("dense_bn_relu", batchNormReLU(dense, x))                               // N x 12544
	x = t.add("reshape", tfops.Reshape(c.In("reshape"), x, 7, 7, 256))                // N x 7 x 7 x 256
	x = t.add("dropout", tfops.Dropout(c.In("dropout"), x, dropoutRate))              // N x 7 x 7 x 256
	x = t.add("up1", tfops.UpSampling2D(c.In("up1"), x, 2))                           // N x 14 x 14 x 256
	x = t.add("deconv1", generatorBlock(c.In("deconv1"), x, 128))                     // N x 14 x 14 x 128
	x = t.add("up2", tfops.UpSampling2D(c.In("up2"), x, 2))                           // N x 28 x 28 x 128
	x = t.add("deconv2", generatorBlock(c.In("deconv2"), x, 64))                      // N x 28 x 28 x 64
	x = t.add("deconv3", generatorBlock(c.In("deconv3"), x, 32))                      // N x 28 x 28 x 32
	x = t.add("deconv4", tfops.Conv2DTranspose(c.In("deconv4"), x, 1, kernelSize, 1)) // N x 28 x 28 x 1
	images := t.add("sigmoid", tfops.Sigmoid(c.In("sigmoid"), x))                     // N x 28 x 28 x 1
	return &Generated{Images: images, Layers: t}
}

// generatorBlock is Conv2DTranspose 5x5 (stride 1, SAME, bias), BatchNorm, ReLU.
func generatorBlock(c tfops.Ctx, x tf.Output, filters int64) tf.Output {
	x = tfops.Conv2DTranspose(c, x, filters, kernelSize, 1)
	return batchNormReLU(c, x)
}

// batchNormReLU is BatchNorm (momentum 0.9) then ReLU; the norm's variables sit
// in a "bn" block of their own.
func batchNormReLU(c tfops.Ctx, x tf.Output) tf.Output {
	x = tfops.BatchNorm(c.In("bn"), x, bnMomentum, bnEpsilon)
	return tfops.ReLU(c, x)
}

// Adversarial stacks the generator and the discriminator: noise N x 100 ->
// probability N x 1 that the generated image is real. c.Path must be the root of
// the variable names ("") so the two networks share the weights of Generator
// and Discriminator built elsewhere.
func Adversarial(c tfops.Ctx, z tf.Output) (*Generated, *Discriminated) {
	g := Generator(c.In("generator"), z)
	return g, Discriminator(c.In("discriminator"), g.Images)
}
