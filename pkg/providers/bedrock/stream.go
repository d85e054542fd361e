package bedrock

import (
	"context"
	"encoding/json"
	"errors"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime/types"

	"github.com/bulkhead-dev/bulkhead/pkg/bulkhead"
)

// GenerateStream sends the request to ConverseStream and hands out the text
// as it arrives. If the stream breaks after some output, the partial response
// comes back with the error, its tokens upper bounds since the service
// reported none: the input bound and the bytes of output received.
func (m *Model) GenerateStream(ctx context.Context, req bulkhead.ModelRequest, onDelta func(text string)) (bulkhead.ModelResponse, error) {
	in, err := converseStreamInput(req)
	if err != nil {
		return bulkhead.ModelResponse{}, err
	}
	out, err := m.client.ConverseStream(ctx, in)
	if err != nil {
		return bulkhead.ModelResponse{}, classify(ctx, err)
	}
	stream := out.GetStream()
	defer stream.Close()

	var (
		text     strings.Builder
		calls    []bulkhead.ToolCall
		inputs   []*strings.Builder
		byIndex  = map[int32]int{} // content block index -> calls index
		received int64             // bytes of text and tool input
		usage    *types.TokenUsage
		stopped  bool
	)
	for ev := range stream.Events() {
		switch ev := ev.(type) {
		case *types.ConverseStreamOutputMemberContentBlockStart:
			if tu, ok := ev.Value.Start.(*types.ContentBlockStartMemberToolUse); ok {
				byIndex[aws.ToInt32(ev.Value.ContentBlockIndex)] = len(calls)
				calls = append(calls, bulkhead.ToolCall{ID: aws.ToString(tu.Value.ToolUseId), Name: aws.ToString(tu.Value.Name)})
				inputs = append(inputs, &strings.Builder{})
			}
		case *types.ConverseStreamOutputMemberContentBlockDelta:
			switch d := ev.Value.Delta.(type) {
			case *types.ContentBlockDeltaMemberText:
				received += int64(len(d.Value))
				text.WriteString(d.Value)
				if onDelta != nil && d.Value != "" {
					onDelta(d.Value)
				}
			case *types.ContentBlockDeltaMemberToolUse:
				chunk := aws.ToString(d.Value.Input)
				received += int64(len(chunk))
				if i, ok := byIndex[aws.ToInt32(ev.Value.ContentBlockIndex)]; ok {
					inputs[i].WriteString(chunk)
				}
			}
		case *types.ConverseStreamOutputMemberMessageStop:
			stopped = true
		case *types.ConverseStreamOutputMemberMetadata:
			usage = ev.Value.Usage
		}
	}
	for i := range calls {
		args := inputs[i].String()
		if strings.TrimSpace(args) == "" {
			args = "{}"
		}
		calls[i].Arguments = json.RawMessage(args)
	}
	resp := bulkhead.ModelResponse{Text: text.String(), ToolCalls: calls}
	err = stream.Err()
	if err == nil && ctx.Err() != nil {
		err = ctx.Err()
	}
	if err == nil && (!stopped || usage == nil) {
		err = &bulkhead.Error{Code: bulkhead.Unavailable, Message: "bedrock: the stream ended before the message and its usage"}
	}
	if err != nil {
		if ctx.Err() != nil || bulkhead.AsError(err) == nil {
			err = classify(ctx, err)
		}
		if received == 0 && usage == nil {
			return bulkhead.ModelResponse{}, err
		}
		resp.InputTokens, resp.OutputTokens = m.CountTokens(req), received
		if usage != nil {
			resp.InputTokens, resp.OutputTokens = int64(aws.ToInt32(usage.InputTokens)), int64(aws.ToInt32(usage.OutputTokens))
		}
		return resp, err
	}
	resp.InputTokens, resp.OutputTokens = int64(aws.ToInt32(usage.InputTokens)), int64(aws.ToInt32(usage.OutputTokens))
	for _, c := range calls {
		if !json.Valid(c.Arguments) {
			return resp, &bulkhead.Error{Code: bulkhead.Unavailable, Message: "bedrock: tool input is not JSON", Err: errors.New("invalid tool input")}
		}
	}
	return resp, nil
}
