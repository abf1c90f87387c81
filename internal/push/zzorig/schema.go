package push

import (
	"fmt"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/descriptorpb"
)

// The messages of push.v1.PusherService are described here, field for field
// as Pyroscope's push/v1/push.proto and types/v1/types.proto define them, and
// handled as dynamic messages by google.golang.org/protobuf. Pyroscope's
// generated Go packages would need three more modules (vtprotobuf, gnostic,
// gorilla/mux) that Hearth does not otherwise use; the wire format and the
// JSON mapping come from the protobuf library either way, and a test checks
// these descriptors against the ones compiled into Pyroscope's generated code.
const (
	typesFile = "types/v1/types.proto"
	pushFile  = "push/v1/push.proto"

	// ServiceName is the fully qualified name of the service.
	ServiceName = "push.v1.PusherService"
	// PushProcedure is the path of the Push method.
	PushProcedure = "/" + ServiceName + "/Push"
)

// schema holds the descriptors the handler reads requests with.
type schema struct {
	pushRequest, pushResponse protoreflect.MessageDescriptor
	push                      protoreflect.MethodDescriptor
	// Fields, looked up once.
	series, labels, samples, name, value, rawProfile, id protoreflect.FieldDescriptor
}

var pushSchema = mustSchema()

func field(name string, number int32, typ descriptorpb.FieldDescriptorProto_Type, repeated bool, typeName, jsonName string) *descriptorpb.FieldDescriptorProto {
	label := descriptorpb.FieldDescriptorProto_LABEL_OPTIONAL
	if repeated {
		label = descriptorpb.FieldDescriptorProto_LABEL_REPEATED
	}
	f := &descriptorpb.FieldDescriptorProto{
		Name:     proto.String(name),
		Number:   proto.Int32(number),
		Label:    label.Enum(),
		Type:     typ.Enum(),
		JsonName: proto.String(jsonName),
	}
	if typeName != "" {
		f.TypeName = proto.String(typeName)
	}
	return f
}

// fileDescriptors returns the two files of the schema, types first.
func fileDescriptors() []*descriptorpb.FileDescriptorProto {
	const (
		tString  = descriptorpb.FieldDescriptorProto_TYPE_STRING
		tBytes   = descriptorpb.FieldDescriptorProto_TYPE_BYTES
		tMessage = descriptorpb.FieldDescriptorProto_TYPE_MESSAGE
	)
	types := &descriptorpb.FileDescriptorProto{
		Name:    proto.String(typesFile),
		Package: proto.String("types.v1"),
		Syntax:  proto.String("proto3"),
		MessageType: []*descriptorpb.DescriptorProto{
			{Name: proto.String("LabelPair"), Field: []*descriptorpb.FieldDescriptorProto{
				field("name", 1, tString, false, "", "name"),
				field("value", 2, tString, false, "", "value"),
			}},
			{Name: proto.String("ProfileAnnotation"), Field: []*descriptorpb.FieldDescriptorProto{
				field("key", 1, tString, false, "", "key"),
				field("value", 2, tString, false, "", "value"),
			}},
		},
	}
	push := &descriptorpb.FileDescriptorProto{
		Name:       proto.String(pushFile),
		Package:    proto.String("push.v1"),
		Syntax:     proto.String("proto3"),
		Dependency: []string{typesFile},
		MessageType: []*descriptorpb.DescriptorProto{
			{Name: proto.String("PushResponse")},
			{Name: proto.String("PushRequest"), Field: []*descriptorpb.FieldDescriptorProto{
				field("series", 1, tMessage, true, ".push.v1.RawProfileSeries", "series"),
			}},
			{Name: proto.String("RawProfileSeries"), Field: []*descriptorpb.FieldDescriptorProto{
				field("labels", 1, tMessage, true, ".types.v1.LabelPair", "labels"),
				field("samples", 2, tMessage, true, ".push.v1.RawSample", "samples"),
				field("annotations", 3, tMessage, true, ".types.v1.ProfileAnnotation", "annotations"),
			}},
			{Name: proto.String("RawSample"), Field: []*descriptorpb.FieldDescriptorProto{
				field("raw_profile", 1, tBytes, false, "", "rawProfile"),
				field("ID", 2, tString, false, "", "ID"),
			}},
		},
		Service: []*descriptorpb.ServiceDescriptorProto{{
			Name: proto.String("PusherService"),
			Method: []*descriptorpb.MethodDescriptorProto{{
				Name:       proto.String("Push"),
				InputType:  proto.String(".push.v1.PushRequest"),
				OutputType: proto.String(".push.v1.PushResponse"),
			}},
		}},
	}
	return []*descriptorpb.FileDescriptorProto{types, push}
}

// mustSchema builds the descriptors in a registry of their own: registering
// them globally would clash with Pyroscope's generated packages if a later
// build linked them in.
func mustSchema() *schema {
	files, err := protodesc.NewFiles(&descriptorpb.FileDescriptorSet{File: fileDescriptors()})
	if err != nil {
		panic(fmt.Sprintf("BUG: push schema: %v", err))
	}
	find := func(name protoreflect.FullName) protoreflect.Descriptor {
		d, err := files.FindDescriptorByName(name)
		if err != nil {
			panic(fmt.Sprintf("BUG: push schema: %v", err))
		}
		return d
	}
	s := &schema{
		pushRequest:  find("push.v1.PushRequest").(protoreflect.MessageDescriptor),
		pushResponse: find("push.v1.PushResponse").(protoreflect.MessageDescriptor),
		push:         find("push.v1.PusherService.Push").(protoreflect.MethodDescriptor),
	}
	seriesMsg := find("push.v1.RawProfileSeries").(protoreflect.MessageDescriptor)
	sampleMsg := find("push.v1.RawSample").(protoreflect.MessageDescriptor)
	labelMsg := find("types.v1.LabelPair").(protoreflect.MessageDescriptor)
	s.series = s.pushRequest.Fields().ByName("series")
	s.labels = seriesMsg.Fields().ByName("labels")
	s.samples = seriesMsg.Fields().ByName("samples")
	s.name = labelMsg.Fields().ByName("name")
	s.value = labelMsg.Fields().ByName("value")
	s.rawProfile = sampleMsg.Fields().ByName("raw_profile")
	s.id = sampleMsg.Fields().ByName("ID")
	return s
}
