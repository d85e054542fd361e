// Package awsclients builds the aws-sdk-go-v2 configuration and the DynamoDB and S3
// clients that every Bulkhead process uses, whether it talks to AWS, to an
// AWS-compatible endpoint named by the SDK's standard environment variables, or to
// the embedded servers of the local platform.
package awsclients
