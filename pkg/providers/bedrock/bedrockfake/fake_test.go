package bedrockfake_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime/document"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime/types"
	"github.com/aws/smithy-go"

	"github.com/bulkhead-dev/bulkhead/pkg/providers/bedrock/bedrockfake"
)

const (
	region = "us-east-1"
	keyID  = "AKIDFAKE"
	secret = "fake-secret"
)

func client(fake *bedrockfake.Server, reg, sec string) *bedrockruntime.Client {
	return bedrockruntime.New(bedrockruntime.Options{
		Region: reg, BaseEndpoint: aws.String(fake.URL()), Retryer: aws.NopRetryer{},
		Credentials: credentials.NewStaticCredentialsProvider(keyID, sec, ""),
	})
}

func text(s string) types.ContentBlock { return &types.ContentBlockMemberText{Value: s} }

func msg(role types.ConversationRole, blocks ...types.ContentBlock) types.Message {
	return types.Message{Role: role, Content: blocks}
}

func apiCode(err error) string {
	var api smithy.APIError
	if errors.As(err, &api) {
		return api.ErrorCode()
	}
	return ""
}

func TestValidation(t *testing.T) {
	fake := bedrockfake.New(region, keyID, secret)
	defer fake.Close()
	c := client(fake, region, secret)
	use := &types.ContentBlockMemberToolUse{Value: types.ToolUseBlock{ToolUseId: aws.String("u1"), Name: aws.String("t"), Input: document.NewLazyDocument(map[string]any{})}}
	result := func(id string) types.ContentBlock {
		return &types.ContentBlockMemberToolResult{Value: types.ToolResultBlock{ToolUseId: aws.String(id),
			Content: []types.ToolResultContentBlock{&types.ToolResultContentBlockMemberText{Value: "ok"}}}}
	}
	tools := &types.ToolConfiguration{Tools: []types.Tool{&types.ToolMemberToolSpec{Value: types.ToolSpecification{Name: aws.String("t"),
		InputSchema: &types.ToolInputSchemaMemberJson{Value: document.NewLazyDocument(map[string]any{"type": "object"})}}}}}
	cases := []struct {
		name  string
		msgs  []types.Message
		tools *types.ToolConfiguration
		ok    bool
	}{
		{"starts with assistant", []types.Message{msg("assistant", text("hi"))}, nil, false},
		{"no alternation", []types.Message{msg("user", text("a")), msg("user", text("b"))}, nil, false},
		{"empty text", []types.Message{msg("user", text(""))}, nil, false},
		{"tool use without toolConfig", []types.Message{msg("user", text("a")), msg("assistant", use), msg("user", result("u1"))}, nil, false},
		{"result answers nothing", []types.Message{msg("user", text("a")), msg("assistant", use), msg("user", result("u2"))}, tools, false},
		{"round trip", []types.Message{msg("user", text("a")), msg("assistant", use), msg("user", result("u1"))}, tools, true},
	}
	for _, tc := range cases {
		out, err := c.Converse(context.Background(), &bedrockruntime.ConverseInput{ModelId: aws.String("amazon.nova-lite-v1:0"), Messages: tc.msgs, ToolConfig: tc.tools})
		if tc.ok {
			if err != nil {
				t.Errorf("%s: %v", tc.name, err)
			} else if out.Usage == nil || aws.ToInt32(out.Usage.TotalTokens) != aws.ToInt32(out.Usage.InputTokens)+aws.ToInt32(out.Usage.OutputTokens) {
				t.Errorf("%s: usage %+v", tc.name, out.Usage)
			}
			continue
		}
		if apiCode(err) != "ValidationException" {
			t.Errorf("%s: err = %v, want ValidationException", tc.name, err)
		}
	}
}

func TestSignatureChecks(t *testing.T) {
	fake := bedrockfake.New(region, keyID, secret)
	defer fake.Close()
	in := &bedrockruntime.ConverseInput{ModelId: aws.String("m"), Messages: []types.Message{msg("user", text("hi"))}}
	if _, err := client(fake, region, "wrong").Converse(context.Background(), in); apiCode(err) != "InvalidSignatureException" {
		t.Errorf("wrong secret: %v", err)
	}
	if _, err := client(fake, "eu-central-1", secret).Converse(context.Background(), in); apiCode(err) != "InvalidSignatureException" {
		t.Errorf("wrong region: %v", err)
	}
	if _, err := client(fake, region, secret).Converse(context.Background(), in); err != nil {
		t.Errorf("right credentials: %v", err)
	}

	// A body changed after signing is refused; the same request unchanged is accepted.
	body := []byte(`{"messages":[{"role":"user","content":[{"text":"hi"}]}]}`)
	send := func(sent []byte, auth string) int {
		req, _ := http.NewRequest(http.MethodPost, fake.URL()+"/model/m/converse", bytes.NewReader(sent))
		req.Header.Set("Content-Type", "application/json")
		sum := sha256.Sum256(body)
		if err := v4.NewSigner().SignHTTP(context.Background(), aws.Credentials{AccessKeyID: keyID, SecretAccessKey: secret},
			req, hex.EncodeToString(sum[:]), "bedrock", region, time.Now()); err != nil {
			t.Fatal(err)
		}
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if s := send(body, ""); s != http.StatusOK {
		t.Errorf("signed request: %d", s)
	}
	if s := send(bytes.Replace(body, []byte("hi"), []byte("ho"), 1), ""); s != http.StatusForbidden {
		t.Errorf("tampered body: %d", s)
	}
	if s := send(body, "Bearer nothing"); s != http.StatusForbidden {
		t.Errorf("unsigned: %d", s)
	}
}

func TestScriptAndRecordsConcurrently(t *testing.T) {
	fake := bedrockfake.New(region, keyID, secret)
	defer fake.Close()
	c := client(fake, region, secret)
	var wg sync.WaitGroup
	for i := range 8 {
		fake.Script(bedrockfake.Reply{Text: "scripted", InputTokens: 7, OutputTokens: 2})
		wg.Add(1)
		go func() {
			defer wg.Done()
			in := &bedrockruntime.ConverseInput{ModelId: aws.String("us.anthropic.claude-sonnet-4-20250514-v1:0"),
				Messages: []types.Message{msg("user", text(strings.Repeat("x", i+1)))}}
			out, err := c.Converse(context.Background(), in)
			if err != nil {
				t.Error(err)
				return
			}
			if aws.ToInt32(out.Usage.InputTokens) != 7 {
				t.Errorf("usage %+v", out.Usage)
			}
		}()
	}
	wg.Wait()
	reqs := fake.Requests()
	if len(reqs) != 8 {
		t.Fatalf("%d requests recorded", len(reqs))
	}
	for _, r := range reqs {
		if r.ModelID != "us.anthropic.claude-sonnet-4-20250514-v1:0" || r.Streamed || r.Body["messages"] == nil {
			t.Errorf("recorded %+v", r)
		}
	}
}

func TestStreamFrames(t *testing.T) {
	fake := bedrockfake.New(region, keyID, secret)
	defer fake.Close()
	out, err := client(fake, region, secret).ConverseStream(context.Background(), &bedrockruntime.ConverseStreamInput{
		ModelId: aws.String("amazon.nova-lite-v1:0"), Messages: []types.Message{msg("user", text("stream me please"))}})
	if err != nil {
		t.Fatal(err)
	}
	stream := out.GetStream()
	defer stream.Close()
	var kinds []string
	var got strings.Builder
	for ev := range stream.Events() {
		switch ev := ev.(type) {
		case *types.ConverseStreamOutputMemberMessageStart:
			kinds = append(kinds, "start")
		case *types.ConverseStreamOutputMemberContentBlockDelta:
			kinds = append(kinds, "delta")
			got.WriteString(ev.Value.Delta.(*types.ContentBlockDeltaMemberText).Value)
		case *types.ConverseStreamOutputMemberContentBlockStop:
			kinds = append(kinds, "blockstop")
		case *types.ConverseStreamOutputMemberMessageStop:
			kinds = append(kinds, "stop:"+string(ev.Value.StopReason))
		case *types.ConverseStreamOutputMemberMetadata:
			// "stream me please" is 16 bytes: 4 tokens; "Echo: stream me please" is 22 bytes: 6.
			if aws.ToInt32(ev.Value.Usage.InputTokens) != 4 || aws.ToInt32(ev.Value.Usage.OutputTokens) != 6 {
				t.Errorf("usage %+v", ev.Value.Usage)
			}
			kinds = append(kinds, "metadata")
		}
	}
	if err := stream.Err(); err != nil {
		t.Fatal(err)
	}
	if want := "start delta delta delta blockstop stop:end_turn metadata"; strings.Join(kinds, " ") != want {
		t.Errorf("events %v, want %s", kinds, want)
	}
	if got.String() != "Echo: stream me please" {
		t.Errorf("text %q", got.String())
	}
	if r := fake.Requests(); len(r) != 1 || !r[0].Streamed {
		t.Errorf("recorded %+v", r)
	}
}
