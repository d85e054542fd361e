package api

import "testing"

// TestDocsTextEscapes: descriptions reach the page escaped; only their
// `spans` become code elements.
func TestDocsTextEscapes(t *testing.T) {
	for in, want := range map[string]string{
		"plain <b>&</b>":               "plain &lt;b&gt;&amp;&lt;/b&gt;",
		"a `<script>` b":               "a <code>&lt;script&gt;</code> b",
		"unpaired ` <i>":               "unpaired ` &lt;i&gt;",
		"`x` and `\"y\"`":              "<code>x</code> and <code>&#34;y&#34;</code>",
		"<img src=x onerror=alert(1)>": "&lt;img src=x onerror=alert(1)&gt;",
	} {
		if got := string(docsText(in)); got != want {
			t.Errorf("docsText(%q) = %q, want %q", in, got, want)
		}
	}
}
