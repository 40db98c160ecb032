package runtimeapi_test

// The Go functions of the tests (runtimeapitest.GoFunction) vendor
// aws-lambda-go from the module cache: importing it here keeps it in
// go.mod, so that the repository's own module download fetches it.
import _ "github.com/aws/aws-lambda-go/lambda"
