// Command agents is the agents Lambda function: wiring only.
package main

import (
	"context"
	"log"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/bulkhead-dev/bulkhead/pkg/api"
	"github.com/bulkhead-dev/bulkhead/pkg/platform"
)

func main() {
	a, err := platform.FromLambdaEnv(context.Background())
	if err != nil {
		log.Fatal(err)
	}
	lambda.Start(a.Function(api.FnAgents))
}
