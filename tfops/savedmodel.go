package tfops

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	tf "github.com/wamuir/graft/tensorflow"
	graphpb "github.com/wamuir/graft/tensorflow/core/framework/graph_go_proto"
	shapepb "github.com/wamuir/graft/tensorflow/core/framework/tensor_shape_go_proto"
	typespb "github.com/wamuir/graft/tensorflow/core/framework/types_go_proto"
	varpb "github.com/wamuir/graft/tensorflow/core/framework/variable_go_proto"
	corepb "github.com/wamuir/graft/tensorflow/core/protobuf/for_core_protos_go_proto"
	"google.golang.org/protobuf/proto"
)

// A SavedModel directory holds
//
//	saved_model.pb                            the graph, how to restore it, its signatures
//	variables/variables.index                 the variables, a tensor bundle written by
//	variables/variables.data-00000-of-00001   SaveV2 (the loaders read exactly these names)
//
// It is the TensorFlow 1 layout ("a MetaGraphDef and a checkpoint"), which every
// SavedModel loader still reads: the C++ loader behind TF_LoadSessionFromSavedModel
// and TF Serving runs the SaverDef's restore op with the variables path fed to its
// filename tensor, and Python's tf.saved_model.load wraps the graph in functions
// (load_v1_in_v2) and does the same.
const (
	// ServeTag is the tag serving tools look a SavedModel's graph up by.
	ServeTag = "serve"
	// SavedModelFile is the graph file inside a SavedModel directory.
	SavedModelFile = "saved_model.pb"

	variablesDir    = "variables"
	variablesPrefix = "variables"

	// predictMethod is the method name TF 2 writes on every signature; TF Serving
	// no longer checks it, older servers want a known one.
	predictMethod = "tensorflow/serving/predict"
)

// Signature is one entry point of a SavedModel: the tensors a caller feeds and
// fetches, by the names it uses for them.
type Signature struct {
	Inputs  map[string]tf.Output
	Outputs map[string]tf.Output
}

// WriteSavedModel writes graph g, the values its saver's variables hold in
// sess, and the signatures as a SavedModel tagged "serve" into dir, which must
// exist and be empty. The graph must contain the saver's ops, since loaders
// restore the variables by running them. Writing is not atomic: write into a
// fresh directory and rename it into place.
func WriteSavedModel(dir string, g *tf.Graph, sess *tf.Session, saver *Saver, signatures map[string]Signature) error {
	if len(signatures) == 0 {
		return fmt.Errorf("savedmodel %s: no signatures", dir)
	}
	sigs := make(map[string]*corepb.SignatureDef, len(signatures))
	for name, s := range signatures {
		def, err := signatureDef(s)
		if err != nil {
			return fmt.Errorf("savedmodel %s: signature %s: %w", dir, name, err)
		}
		sigs[name] = def
	}
	var buf bytes.Buffer
	if _, err := g.WriteTo(&buf); err != nil {
		return fmt.Errorf("savedmodel %s: serialize the graph: %w", dir, err)
	}
	graphDef := new(graphpb.GraphDef)
	if err := proto.Unmarshal(buf.Bytes(), graphDef); err != nil {
		return fmt.Errorf("savedmodel %s: decode the graph: %w", dir, err)
	}
	collections, err := variableCollections(saver)
	if err != nil {
		return fmt.Errorf("savedmodel %s: %w", dir, err)
	}
	model := &corepb.SavedModel{
		SavedModelSchemaVersion: 1,
		MetaGraphs: []*corepb.MetaGraphDef{{
			MetaInfoDef: &corepb.MetaGraphDef_MetaInfoDef{
				Tags:              []string{ServeTag},
				TensorflowVersion: tf.Version(),
			},
			GraphDef: graphDef,
			SaverDef: &corepb.SaverDef{
				FilenameTensorName: saver.prefix.Op.Name() + ":0",
				SaveTensorName:     tensorName(saver.saved),
				RestoreOpName:      saver.restore.Name(),
				Version:            corepb.SaverDef_V2,
			},
			CollectionDef: collections,
			SignatureDef:  sigs,
		}},
	}
	raw, err := proto.Marshal(model)
	if err != nil {
		return fmt.Errorf("savedmodel %s: encode: %w", dir, err)
	}

	vdir := filepath.Join(dir, variablesDir)
	if err := os.Mkdir(vdir, 0o755); err != nil {
		return fmt.Errorf("savedmodel: %w", err)
	}
	if err := saver.Save(sess, filepath.Join(vdir, variablesPrefix)); err != nil {
		return fmt.Errorf("savedmodel %s: %w", dir, err)
	}
	if err := writeSynced(filepath.Join(dir, SavedModelFile), raw); err != nil {
		return fmt.Errorf("savedmodel %s: %w", dir, err)
	}
	// SaveV2 does not sync what it writes; a model renamed into place after a
	// crash must not have empty variable files.
	files, err := filepath.Glob(filepath.Join(vdir, "*"))
	if err != nil {
		return fmt.Errorf("savedmodel %s: %w", dir, err)
	}
	for _, f := range append(files, vdir, dir) {
		if err := syncPath(f); err != nil {
			return fmt.Errorf("savedmodel %s: %w", dir, err)
		}
	}
	return nil
}

// signatureDef describes s's tensors by graph name, type and static shape.
func signatureDef(s Signature) (*corepb.SignatureDef, error) {
	if len(s.Inputs) == 0 || len(s.Outputs) == 0 {
		return nil, fmt.Errorf("a signature needs inputs and outputs")
	}
	def := &corepb.SignatureDef{
		Inputs:     make(map[string]*corepb.TensorInfo),
		Outputs:    make(map[string]*corepb.TensorInfo),
		MethodName: predictMethod,
	}
	for _, side := range []struct {
		tensors map[string]tf.Output
		infos   map[string]*corepb.TensorInfo
	}{{s.Inputs, def.Inputs}, {s.Outputs, def.Outputs}} {
		for key, t := range side.tensors {
			if t.Op == nil {
				return nil, fmt.Errorf("%s has no tensor", key)
			}
			side.infos[key] = &corepb.TensorInfo{
				Encoding:    &corepb.TensorInfo_Name{Name: tensorName(t)},
				Dtype:       typespb.DataType(t.DataType()),
				TensorShape: shapeProto(Shape(t)),
			}
		}
	}
	return def, nil
}

// variableCollections lists the saver's variables in the collections TF 1
// graphs keep them in. Python's loader turns each entry into a tf.Variable of
// the loaded object (loaded.variables) instead of leaving it hidden in the
// graph; the C++ loader ignores them.
func variableCollections(saver *Saver) (map[string]*corepb.CollectionDef, error) {
	var all, trainable [][]byte
	for i, v := range saver.vars {
		raw, err := proto.Marshal(&varpb.VariableDef{
			VariableName:    tensorName(v.Handle),
			InitializerName: v.Init.Name(),
			SnapshotName:    tensorName(saver.values[i]),
			IsResource:      true,
			Trainable:       v.Trainable,
		})
		if err != nil {
			return nil, fmt.Errorf("describe variable %s: %w", v.Name, err)
		}
		all = append(all, raw)
		if v.Trainable {
			trainable = append(trainable, raw)
		}
	}
	bytesList := func(values [][]byte) *corepb.CollectionDef {
		return &corepb.CollectionDef{Kind: &corepb.CollectionDef_BytesList_{BytesList: &corepb.CollectionDef_BytesList{Value: values}}}
	}
	out := map[string]*corepb.CollectionDef{"variables": bytesList(all)}
	if len(trainable) > 0 {
		out["trainable_variables"] = bytesList(trainable)
	}
	return out, nil
}

// tensorName is the "op:index" name loaders look a tensor up by.
func tensorName(t tf.Output) string { return fmt.Sprintf("%s:%d", t.Op.Name(), t.Index) }

// shapeProto records a static shape; -1 marks a dimension known only at run time.
func shapeProto(dims []int64) *shapepb.TensorShapeProto {
	if dims == nil {
		return &shapepb.TensorShapeProto{UnknownRank: true}
	}
	p := &shapepb.TensorShapeProto{}
	for _, d := range dims {
		p.Dim = append(p.Dim, &shapepb.TensorShapeProto_Dim{Size: d})
	}
	return p
}

// LoadSavedModel loads the "serve" graph of the SavedModel in dir with
// TensorFlow's own loader, which also restores its variables. A model without
// variables is refused.
func LoadSavedModel(dir string, cfg SessionConfig) (*tf.SavedModel, error) {
	st, err := os.Stat(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%s does not exist", dir)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", dir, err)
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("%s is a file, not a SavedModel directory", dir)
	}
	if _, err := os.Stat(filepath.Join(dir, SavedModelFile)); err != nil {
		return nil, fmt.Errorf("%s is not a TensorFlow SavedModel: it has no %s", dir, SavedModelFile)
	}
	// TensorFlow's loader skips the restore, without a word, when the variables
	// are missing, and the model then fails at its first run.
	if _, err := os.Stat(filepath.Join(dir, variablesDir, variablesPrefix+".index")); err != nil {
		return nil, fmt.Errorf("%s is an incomplete SavedModel: it has no %s", dir, filepath.Join(variablesDir, variablesPrefix+".index"))
	}
	opts, err := cfg.options()
	if err != nil {
		return nil, err
	}
	m, err := tf.LoadSavedModel(dir, []string{ServeTag}, opts)
	if err != nil {
		return nil, fmt.Errorf("%s: TensorFlow cannot load it: %w", dir, tidyRunError(err))
	}
	return m, nil
}

// SignatureIO returns the tensors a loaded model's signature feeds under the
// key input and fetches under the key output.
func SignatureIO(m *tf.SavedModel, signature, input, output string) (in, out tf.Output, err error) {
	sig, ok := m.Signatures[signature]
	if !ok {
		return in, out, fmt.Errorf("it has no signature %q (it has %v)", signature, signatureNames(m.Signatures))
	}
	find := func(infos map[string]tf.TensorInfo, key, side string) (tf.Output, error) {
		info, ok := infos[key]
		if !ok {
			return tf.Output{}, fmt.Errorf("signature %q has no %s %q", signature, side, key)
		}
		name, index := info.Name, 0
		if i := strings.LastIndexByte(name, ':'); i >= 0 {
			n, err := strconv.Atoi(name[i+1:])
			if err != nil {
				return tf.Output{}, fmt.Errorf("signature %q: bad tensor name %q", signature, info.Name)
			}
			name, index = name[:i], n
		}
		o := m.Graph.Operation(name)
		if o == nil || index >= o.NumOutputs() {
			return tf.Output{}, fmt.Errorf("signature %q names tensor %q, which the graph lacks", signature, info.Name)
		}
		return o.Output(index), nil
	}
	if in, err = find(sig.Inputs, input, "input"); err != nil {
		return in, out, err
	}
	out, err = find(sig.Outputs, output, "output")
	return in, out, err
}

func signatureNames(sigs map[string]tf.Signature) []string {
	names := make([]string, 0, len(sigs))
	for n := range sigs {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// writeSynced writes data to path and flushes it to disk.
func writeSynced(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// syncPath flushes a file or a directory's entries to disk.
func syncPath(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := f.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", path, err)
	}
	return nil
}

// DTypeName names a tensor type as TensorFlow does, without its "DT_":
// "float" (float32), "double", "int64", ...
func DTypeName(dt tf.DataType) string {
	return strings.ToLower(strings.TrimPrefix(typespb.DataType(dt).String(), "DT_"))
}
