package api

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"fmt"
	"html/template"
	"slices"
	"strings"
)

// The API reference (GET /docs) is rendered on the server from the OpenAPI
// document: plain HTML and one same-origin style sheet, no script.

//go:embed docs.html.tmpl
var docsTemplate string

var docsTmpl = template.Must(template.New("docs").Funcs(template.FuncMap{"text": docsText}).Parse(docsTemplate))

// docsText renders a description: escaped text in which `spans` are code.
func docsText(s string) template.HTML {
	parts := strings.Split(s, "`")
	if len(parts)%2 == 0 {
		// An unpaired backquote: no code spans at all.
		return template.HTML(template.HTMLEscapeString(s))
	}
	var b strings.Builder
	for i, p := range parts {
		if i%2 == 1 {
			b.WriteString("<code>" + template.HTMLEscapeString(p) + "</code>")
		} else {
			b.WriteString(template.HTMLEscapeString(p))
		}
	}
	return template.HTML(b.String())
}

// specNode is a decoded JSON object of the document.
type specNode = map[string]any

type docsView struct {
	Title, Version, Description string
	Tags                        []docsTag
	Schemas                     []docsSchema
}

type docsTag struct {
	Name, Description string
	Ops               []docsOp
}

type docsOp struct {
	Anchor, Method, Path, Summary, Description, Auth string
	Params                                           []docsParam
	Body                                             []docsContent
	BodyRequired                                     bool
	Responses                                        []docsResponse
}

type docsParam struct {
	Name, In, Type, Description string
	Required                    bool
}

type docsContent struct {
	MediaType, Description string
	Type                   docsType
	Fields                 []docsField
}

type docsResponse struct {
	Status, Description string
	Headers             []docsParam
	Contents            []docsContent
}

// docsType is a schema's type as text, with the component it names, if any.
type docsType struct {
	Text, Ref string
}

type docsField struct {
	Name        string
	Type        docsType
	Required    bool
	Description string
	Depth       int
}

type docsSchema struct {
	Name, Description string
	Type              docsType
	Fields            []docsField
}

var httpMethods = []string{"get", "put", "post", "patch", "delete"}

// renderDocs renders the reference page from the document's JSON.
func renderDocs(specJSON []byte) ([]byte, error) {
	var doc specNode
	if err := json.Unmarshal(specJSON, &doc); err != nil {
		return nil, err
	}
	info := obj(doc["info"])
	v := docsView{Title: str(info["title"]), Version: str(info["version"]), Description: str(info["description"])}
	tagIndex := map[string]int{}
	for _, t := range arr(doc["tags"]) {
		tn := obj(t)
		tagIndex[str(tn["name"])] = len(v.Tags)
		v.Tags = append(v.Tags, docsTag{Name: str(tn["name"]), Description: str(tn["description"])})
	}
	paths := obj(doc["paths"])
	for _, p := range sortedKeys(paths) {
		item := obj(paths[p])
		shared := arr(item["parameters"])
		for _, m := range httpMethods {
			op, ok := item[m].(specNode)
			if !ok {
				continue
			}
			d := docsOp{Method: strings.ToUpper(m), Path: p, Summary: str(op["summary"]), Description: str(op["description"]),
				Anchor: str(op["operationId"])}
			d.Auth = authText(doc, op)
			for _, pr := range append(slices.Clone(shared), arr(op["parameters"])...) {
				pn := resolve(doc, pr)
				d.Params = append(d.Params, docsParam{Name: str(pn["name"]), In: str(pn["in"]), Required: pn["required"] == true,
					Type: typeOf(doc, pn["schema"]).Text, Description: str(pn["description"])})
			}
			if rb := resolve(doc, op["requestBody"]); rb != nil {
				d.BodyRequired = rb["required"] == true
				d.Body = contents(doc, obj(rb["content"]))
			}
			resps := obj(op["responses"])
			for _, status := range sortedKeys(resps) {
				rn := resolve(doc, resps[status])
				r := docsResponse{Status: status, Description: str(rn["description"]), Contents: contents(doc, obj(rn["content"]))}
				hs := obj(rn["headers"])
				for _, name := range sortedKeys(hs) {
					hn := resolve(doc, hs[name])
					r.Headers = append(r.Headers, docsParam{Name: name, Type: typeOf(doc, hn["schema"]).Text, Description: str(hn["description"])})
				}
				d.Responses = append(d.Responses, r)
			}
			tag := "other"
			if ts := arr(op["tags"]); len(ts) > 0 {
				tag = str(ts[0])
			}
			i, ok := tagIndex[tag]
			if !ok {
				i = len(v.Tags)
				tagIndex[tag] = i
				v.Tags = append(v.Tags, docsTag{Name: tag})
			}
			v.Tags[i].Ops = append(v.Tags[i].Ops, d)
		}
	}
	schemas := obj(obj(doc["components"])["schemas"])
	for _, name := range sortedKeys(schemas) {
		s := obj(schemas[name])
		v.Schemas = append(v.Schemas, docsSchema{Name: name, Description: str(s["description"]), Type: typeOf(doc, s),
			Fields: fields(doc, s, 0)})
	}
	var b bytes.Buffer
	if err := docsTmpl.Execute(&b, v); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

func contents(doc specNode, c specNode) []docsContent {
	var out []docsContent
	for _, mt := range sortedKeys(c) {
		s := obj(c[mt])["schema"]
		dc := docsContent{MediaType: mt, Type: typeOf(doc, s)}
		if sn := obj(s); sn["$ref"] == nil {
			dc.Fields = fields(doc, sn, 0)
			if dc.Fields == nil {
				dc.Description = str(sn["description"])
			}
		}
		out = append(out, dc)
	}
	return out
}

// fields lists an inline object schema's properties, nested objects indented.
func fields(doc specNode, s specNode, depth int) []docsField {
	props := obj(s["properties"])
	if len(props) == 0 || depth > 3 {
		return nil
	}
	required := map[string]bool{}
	for _, r := range arr(s["required"]) {
		required[str(r)] = true
	}
	var out []docsField
	for _, name := range sortedKeys(props) {
		p := obj(props[name])
		out = append(out, docsField{Name: name, Type: typeOf(doc, p), Required: required[name], Description: str(p["description"]), Depth: depth})
		if p["$ref"] == nil {
			out = append(out, fields(doc, p, depth+1)...)
			if items := obj(p["items"]); items["$ref"] == nil {
				out = append(out, fields(doc, items, depth+1)...)
			}
		}
	}
	return out
}

// typeOf describes a schema in a few words.
func typeOf(doc specNode, v any) docsType {
	s := obj(v)
	if s == nil {
		return docsType{Text: "any"}
	}
	if ref := str(s["$ref"]); ref != "" {
		name := ref[strings.LastIndex(ref, "/")+1:]
		return docsType{Text: name, Ref: "schema-" + name}
	}
	if c, ok := s["const"]; ok {
		b, _ := json.Marshal(c)
		return docsType{Text: string(b)}
	}
	var t string
	switch tt := s["type"].(type) {
	case string:
		t = tt
	case []any:
		parts := make([]string, len(tt))
		for i, p := range tt {
			parts[i] = str(p)
		}
		t = strings.Join(parts, " or ")
	default:
		t = "any"
	}
	if t == "array" {
		it := typeOf(doc, s["items"])
		return docsType{Text: "array of " + it.Text, Ref: it.Ref}
	}
	var extra []string
	if e := arr(s["enum"]); len(e) > 0 {
		vals := make([]string, len(e))
		for i, x := range e {
			vals[i] = fmt.Sprint(x)
		}
		extra = append(extra, "one of "+strings.Join(vals, ", "))
	}
	if f := str(s["format"]); f != "" {
		extra = append(extra, f)
	}
	if p := str(s["pattern"]); p != "" {
		extra = append(extra, "pattern "+p)
	}
	for _, k := range []string{"minimum", "maximum", "minLength", "maxLength", "maxItems"} {
		if x, ok := s[k]; ok {
			extra = append(extra, fmt.Sprintf("%s %v", k, x))
		}
	}
	if len(extra) > 0 {
		t += " (" + strings.Join(extra, "; ") + ")"
	}
	return docsType{Text: t}
}

// authText says how an operation is authorized.
func authText(doc specNode, op specNode) string {
	sec, ok := op["security"].([]any)
	if !ok {
		sec, _ = doc["security"].([]any)
	}
	if len(sec) == 0 {
		return "none"
	}
	var names []string
	for _, req := range sec {
		for _, k := range sortedKeys(obj(req)) {
			scheme := obj(obj(obj(doc["components"])["securitySchemes"])[k])
			names = append(names, k+": "+str(scheme["description"]))
		}
	}
	return strings.Join(names, " Or ")
}

// resolve follows a local $ref.
func resolve(doc specNode, v any) specNode {
	n := obj(v)
	for i := 0; n != nil && i < 8; i++ {
		ref := str(n["$ref"])
		if !strings.HasPrefix(ref, "#/") {
			return n
		}
		var cur any = doc
		for _, part := range strings.Split(ref[2:], "/") {
			cur = obj(cur)[part]
		}
		n = obj(cur)
	}
	return n
}

func obj(v any) specNode {
	m, _ := v.(specNode)
	return m
}

func arr(v any) []any {
	a, _ := v.([]any)
	return a
}

func str(v any) string {
	s, _ := v.(string)
	return s
}

func sortedKeys(m specNode) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
