package push

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/descriptorpb"
)

// pyroscopeAPIDir returns where the go command keeps the module of
// Pyroscope's generated API code, or skips the test when it is not
// downloaded.
func pyroscopeAPIDir(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/grafana/pyroscope/api").Output()
	dir := strings.TrimSpace(string(out))
	if err != nil || dir == "" {
		t.Skipf("module github.com/grafana/pyroscope/api is not downloaded (go mod download): %v", err)
	}
	return dir
}

// generatedDescriptor reads the file descriptor that protoc-gen-go compiled
// into a generated .pb.go file: the string constant named constName.
func generatedDescriptor(t *testing.T, file, constName string) *descriptorpb.FileDescriptorProto {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), file, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	var raw []byte
	ast.Inspect(f, func(n ast.Node) bool {
		vs, ok := n.(*ast.ValueSpec)
		if !ok || len(vs.Names) != 1 || vs.Names[0].Name != constName || len(vs.Values) != 1 {
			return true
		}
		s, err := concatLiterals(vs.Values[0])
		if err != nil {
			t.Fatalf("%s in %s: %v", constName, file, err)
		}
		raw = []byte(s)
		return false
	})
	if raw == nil {
		t.Fatalf("no constant %s in %s", constName, file)
	}
	fd := &descriptorpb.FileDescriptorProto{}
	if err := proto.Unmarshal(raw, fd); err != nil {
		t.Fatalf("%s in %s: %v", constName, file, err)
	}
	return fd
}

// concatLiterals evaluates a + of string literals.
func concatLiterals(e ast.Expr) (string, error) {
	switch e := e.(type) {
	case *ast.BasicLit:
		if e.Kind != token.STRING {
			return "", fmt.Errorf("literal of kind %s", e.Kind)
		}
		return strconv.Unquote(e.Value)
	case *ast.BinaryExpr:
		if e.Op != token.ADD {
			return "", fmt.Errorf("operator %s", e.Op)
		}
		x, err := concatLiterals(e.X)
		if err != nil {
			return "", err
		}
		y, err := concatLiterals(e.Y)
		return x + y, err
	case *ast.ParenExpr:
		return concatLiterals(e.X)
	}
	return "", fmt.Errorf("expression %T", e)
}

// wireFields keeps what decides the wire format and the JSON mapping of a
// message's fields.
type wireField struct {
	Name, JSONName, TypeName string
	Number                   int32
	Label                    descriptorpb.FieldDescriptorProto_Label
	Type                     descriptorpb.FieldDescriptorProto_Type
}

func wireFields(m *descriptorpb.DescriptorProto) []wireField {
	var out []wireField
	for _, f := range m.GetField() {
		out = append(out, wireField{f.GetName(), f.GetJsonName(), f.GetTypeName(), f.GetNumber(), f.GetLabel(), f.GetType()})
	}
	return out
}

func message(fd *descriptorpb.FileDescriptorProto, name string) *descriptorpb.DescriptorProto {
	for _, m := range fd.GetMessageType() {
		if m.GetName() == name {
			return m
		}
	}
	return nil
}

// TestSchemaMatchesPyroscope checks the handler's descriptors, field by
// field, against the descriptors compiled into Pyroscope's generated Go code
// of the version in go.mod: same names, numbers, types and JSON names mean
// the same bytes on the wire and the same JSON.
func TestSchemaMatchesPyroscope(t *testing.T) {
	dir := filepath.Join(pyroscopeAPIDir(t), "gen", "proto", "go")
	real := map[string]*descriptorpb.FileDescriptorProto{
		typesFile: generatedDescriptor(t, filepath.Join(dir, "types", "v1", "types.pb.go"), "file_types_v1_types_proto_rawDesc"),
		pushFile:  generatedDescriptor(t, filepath.Join(dir, "push", "v1", "push.pb.go"), "file_push_v1_push_proto_rawDesc"),
	}
	for _, mine := range fileDescriptors() {
		theirs := real[mine.GetName()]
		if theirs.GetPackage() != mine.GetPackage() {
			t.Errorf("%s: package %q, want %q", mine.GetName(), mine.GetPackage(), theirs.GetPackage())
		}
		for _, m := range mine.GetMessageType() {
			tm := message(theirs, m.GetName())
			if tm == nil {
				t.Errorf("%s: Pyroscope has no message %s", mine.GetName(), m.GetName())
				continue
			}
			if d := cmp.Diff(wireFields(tm), wireFields(m)); d != "" {
				t.Errorf("%s.%s fields (-Pyroscope +Hearth):\n%s", mine.GetPackage(), m.GetName(), d)
			}
		}
	}
	// Every message of push.proto is described.
	for _, m := range real[pushFile].GetMessageType() {
		if message(fileDescriptors()[1], m.GetName()) == nil {
			t.Errorf("push.proto message %s is not described", m.GetName())
		}
	}
	svc := real[pushFile].GetService()
	if len(svc) != 1 || svc[0].GetName() != "PusherService" {
		t.Fatalf("push.proto services: %v", svc)
	}
	var methods []string
	for _, m := range svc[0].GetMethod() {
		methods = append(methods, m.GetName()+"("+m.GetInputType()+") "+m.GetOutputType())
	}
	if want := []string{"Push(.push.v1.PushRequest) .push.v1.PushResponse"}; !cmp.Equal(methods, want) {
		t.Errorf("PusherService methods %v, want %v", methods, want)
	}
}
