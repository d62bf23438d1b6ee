// Command openapischema prints the OpenAPI v2 models of the API types, from
// the definitions openapi-gen generated into ./models (not committed), in the form
// applyconfiguration-gen reads with --openapi-schema. With it the generated
// apply configurations carry real models, and client-go's field-managing
// fake clientset (NewClientset) can create objects of this API in unit
// tests. hack/update-codegen.sh runs it.
package main

import (
	"encoding/json"
	"fmt"
	"os"

	"k8s.io/kube-openapi/pkg/common"
	"k8s.io/kube-openapi/pkg/util"
	"k8s.io/kube-openapi/pkg/validation/spec"

	openapi "github.com/image-registry-operator/image-registry-operator/hack/tools/openapischema/models"
)

func main() {
	ref := func(name string) spec.Ref {
		return spec.MustCreateRef("#/definitions/" + util.ToRESTFriendlyName(name))
	}
	defs := openapi.GetOpenAPIDefinitions(ref)
	models := make(map[string]spec.Schema, len(defs))
	for name, def := range defs {
		schema := def.Schema
		// Some apimachinery types carry a separate v2 form.
		if v2, ok := schema.Extensions[common.ExtensionV2Schema]; ok {
			if s, ok := v2.(spec.Schema); ok {
				schema = s
			}
		}
		models[util.ToRESTFriendlyName(name)] = schema
	}
	out, err := json.MarshalIndent(spec.Swagger{SwaggerProps: spec.SwaggerProps{
		Swagger:     "2.0",
		Info:        &spec.Info{InfoProps: spec.InfoProps{Title: "image-registry-operator", Version: "v1alpha1"}},
		Definitions: models,
	}}, "", "  ")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Stdout.Write(append(out, '\n'))
}
