package lambda_test

import (
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awslambda "github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
)

// versionsAndAliases: publish, list versions, aliases with weights, and
// calls to versions and aliases by every way Lambda names them.
func versionsAndAliases(t *testing.T, c *awslambda.Client) {
	ctx := t.Context()
	fnARN := "arn:aws:lambda:" + region + ":" + account + ":function:ver"
	create(t, c, "ver", map[string]string{"ANSWER": "v1"})
	v1, err := c.PublishVersion(ctx, &awslambda.PublishVersionInput{FunctionName: aws.String("ver"), Description: aws.String("first")})
	if err != nil || aws.ToString(v1.Version) != "1" || aws.ToString(v1.FunctionArn) != fnARN+":1" || aws.ToString(v1.Description) != "first" {
		t.Fatalf("PublishVersion: %+v, %v", v1, err)
	}
	_, err = c.PublishVersion(ctx, &awslambda.PublishVersionInput{FunctionName: aws.String("ver"), CodeSha256: aws.String("bm90IHRoZSBoYXNo")})
	wantError[*types.InvalidParameterValueException](t, "PublishVersion with another CodeSha256", err)
	// Changed and published with the change, in one call.
	changed, err := c.UpdateFunctionConfiguration(ctx, &awslambda.UpdateFunctionConfigurationInput{FunctionName: aws.String("ver"),
		Environment: &types.Environment{Variables: map[string]string{"ANSWER": "v2"}}})
	if err != nil {
		t.Fatal(err)
	}
	if v2, err := c.PublishVersion(ctx, &awslambda.PublishVersionInput{FunctionName: aws.String("ver"), CodeSha256: changed.CodeSha256}); err != nil || aws.ToString(v2.Version) != "2" {
		t.Fatalf("PublishVersion of the change: %+v, %v", v2, err)
	}
	var versions []string
	for p := awslambda.NewListVersionsByFunctionPaginator(c, &awslambda.ListVersionsByFunctionInput{FunctionName: aws.String("ver"), MaxItems: aws.Int32(2)}); p.HasMorePages(); {
		page, err := p.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range page.Versions {
			versions = append(versions, aws.ToString(v.Version)+"="+v.Environment.Variables["ANSWER"])
		}
	}
	if len(versions) != 3 || versions[0] != "$LATEST=v2" || versions[1] != "1=v1" || versions[2] != "2=v2" {
		t.Errorf("ListVersionsByFunction: %v", versions)
	}

	all, err := c.ListFunctions(ctx, &awslambda.ListFunctionsInput{FunctionVersion: types.FunctionVersionAll})
	if err != nil {
		t.Fatal(err)
	}
	var arns []string
	for _, f := range all.Functions {
		if aws.ToString(f.FunctionName) == "ver" {
			arns = append(arns, aws.ToString(f.FunctionArn))
		}
	}
	if len(arns) != 3 || arns[0] != fnARN || arns[1] != fnARN+":1" || arns[2] != fnARN+":2" {
		t.Errorf("ListFunctions FunctionVersion=ALL: %v", arns)
	}

	a, err := c.CreateAlias(ctx, &awslambda.CreateAliasInput{FunctionName: aws.String("ver"), Name: aws.String("live"), FunctionVersion: aws.String("1"), Description: aws.String("prod")})
	if err != nil || aws.ToString(a.AliasArn) != fnARN+":live" || aws.ToString(a.FunctionVersion) != "1" {
		t.Fatalf("CreateAlias: %+v, %v", a, err)
	}
	_, err = c.CreateAlias(ctx, &awslambda.CreateAliasInput{FunctionName: aws.String("ver"), Name: aws.String("live"), FunctionVersion: aws.String("1")})
	wantError[*types.ResourceConflictException](t, "CreateAlias of a taken name", err)
	_, err = c.CreateAlias(ctx, &awslambda.CreateAliasInput{FunctionName: aws.String("ver"), Name: aws.String("latest"), FunctionVersion: aws.String("$LATEST")})
	wantError[*types.InvalidParameterValueException](t, "CreateAlias of $LATEST", err)

	// Every way of naming what runs: name:qualifier, Qualifier, ARNs
	// full and partial.
	for _, tc := range []struct {
		name, qualifier, answer, executed string
	}{
		{"ver", "", "v2", "$LATEST"},
		{"ver:1", "", "v1", "1"},
		{"ver", "2", "v2", "2"},
		{"ver", "live", "v1", "1"},
		{fnARN + ":live", "", "v1", "1"},
		{fnARN, "1", "v1", "1"},
		{account + ":function:ver:2", "", "v2", "2"},
		{account + ":function:ver", "$LATEST", "v2", "$LATEST"},
	} {
		in := &awslambda.InvokeInput{FunctionName: aws.String(tc.name)}
		if tc.qualifier != "" {
			in.Qualifier = aws.String(tc.qualifier)
		}
		var got struct{ Answer string }
		res := invoke(t, c, in, &got)
		if got.Answer != tc.answer || aws.ToString(res.ExecutedVersion) != tc.executed {
			t.Errorf("Invoke %s (qualifier %q): answer %q from version %s, want %q from %s", tc.name, tc.qualifier, got.Answer, aws.ToString(res.ExecutedVersion), tc.answer, tc.executed)
		}
	}
	for name, q := range map[string]string{"ver:9": "", "ver": "nope", "arn:aws:lambda:eu-west-1:" + account + ":function:ver": "", "999999999999:function:ver": ""} {
		in := &awslambda.InvokeInput{FunctionName: aws.String(name)}
		if q != "" {
			in.Qualifier = aws.String(q)
		}
		_, err := c.Invoke(ctx, in)
		wantError[*types.ResourceNotFoundException](t, "Invoke "+name+" "+q, err)
	}
	_, err = c.Invoke(ctx, &awslambda.InvokeInput{FunctionName: aws.String("ver:1"), Qualifier: aws.String("2")})
	wantError[*types.InvalidParameterValueException](t, "Invoke with two qualifiers that disagree", err)

	cfg, err := c.GetFunctionConfiguration(ctx, &awslambda.GetFunctionConfigurationInput{FunctionName: aws.String("ver"), Qualifier: aws.String("live")})
	if err != nil || aws.ToString(cfg.Version) != "1" || cfg.Environment.Variables["ANSWER"] != "v1" {
		t.Errorf("GetFunctionConfiguration of the alias: %+v, %v", cfg, err)
	}

	// A split: half the calls go to version 2.
	up, err := c.UpdateAlias(ctx, &awslambda.UpdateAliasInput{FunctionName: aws.String("ver"), Name: aws.String("live"),
		RoutingConfig: &types.AliasRoutingConfiguration{AdditionalVersionWeights: map[string]float64{"2": 0.5}}, RevisionId: a.RevisionId})
	if err != nil || up.RoutingConfig == nil || up.RoutingConfig.AdditionalVersionWeights["2"] != 0.5 || aws.ToString(up.FunctionVersion) != "1" {
		t.Fatalf("UpdateAlias: %+v, %v", up, err)
	}
	_, err = c.UpdateAlias(ctx, &awslambda.UpdateAliasInput{FunctionName: aws.String("ver"), Name: aws.String("live"), Description: aws.String("x"), RevisionId: a.RevisionId})
	wantError[*types.PreconditionFailedException](t, "UpdateAlias with a stale RevisionId", err)
	seen := map[string]bool{}
	for i := 0; i < 200 && len(seen) < 2; i++ {
		res := invoke(t, c, &awslambda.InvokeInput{FunctionName: aws.String("ver"), Qualifier: aws.String("live")}, nil)
		seen[aws.ToString(res.ExecutedVersion)] = true
	}
	if !seen["1"] || !seen["2"] || len(seen) != 2 {
		t.Errorf("200 calls through a 50/50 alias ran versions %v", seen)
	}
	got, err := c.GetAlias(ctx, &awslambda.GetAliasInput{FunctionName: aws.String("ver"), Name: aws.String("live")})
	if err != nil || got.RoutingConfig == nil || got.RoutingConfig.AdditionalVersionWeights["2"] != 0.5 || aws.ToString(got.Description) != "prod" {
		t.Errorf("GetAlias: %+v, %v", got, err)
	}
	// Moved to 2 without weights: the split ends.
	if up, err = c.UpdateAlias(ctx, &awslambda.UpdateAliasInput{FunctionName: aws.String("ver"), Name: aws.String("live"), FunctionVersion: aws.String("2")}); err != nil || up.RoutingConfig != nil {
		t.Errorf("UpdateAlias to version 2: %+v, %v", up, err)
	}
	if _, err := c.CreateAlias(ctx, &awslambda.CreateAliasInput{FunctionName: aws.String("ver"), Name: aws.String("old"), FunctionVersion: aws.String("1")}); err != nil {
		t.Fatal(err)
	}
	list, err := c.ListAliases(ctx, &awslambda.ListAliasesInput{FunctionName: aws.String("ver")})
	if err != nil || len(list.Aliases) != 2 {
		t.Fatalf("ListAliases: %+v, %v", list, err)
	}
	list, err = c.ListAliases(ctx, &awslambda.ListAliasesInput{FunctionName: aws.String("ver"), FunctionVersion: aws.String("1")})
	if err != nil || len(list.Aliases) != 1 || aws.ToString(list.Aliases[0].Name) != "old" {
		t.Errorf("ListAliases of version 1: %+v, %v", list, err)
	}
	// A version an alias points at cannot go; once the alias is gone it can.
	_, err = c.DeleteFunction(ctx, &awslambda.DeleteFunctionInput{FunctionName: aws.String("ver"), Qualifier: aws.String("1")})
	wantError[*types.ResourceConflictException](t, "DeleteFunction of a version an alias points at", err)
	if _, err := c.DeleteAlias(ctx, &awslambda.DeleteAliasInput{FunctionName: aws.String("ver"), Name: aws.String("old")}); err != nil {
		t.Fatal(err)
	}
	_, err = c.GetAlias(ctx, &awslambda.GetAliasInput{FunctionName: aws.String("ver"), Name: aws.String("old")})
	if e := wantError[*types.ResourceNotFoundException](t, "GetAlias of a deleted alias", err); e.ErrorMessage() != "Alias not found: "+fnARN+":old" {
		t.Errorf("message %q", e.ErrorMessage())
	}
	if _, err := c.DeleteFunction(ctx, &awslambda.DeleteFunctionInput{FunctionName: aws.String("ver"), Qualifier: aws.String("1")}); err != nil {
		t.Fatalf("DeleteFunction of version 1: %v", err)
	}
	_, err = c.Invoke(ctx, &awslambda.InvokeInput{FunctionName: aws.String("ver:1")})
	wantError[*types.ResourceNotFoundException](t, "Invoke of a deleted version", err)

	// Code changed and published at once.
	up3, err := c.UpdateFunctionCode(ctx, &awslambda.UpdateFunctionCodeInput{FunctionName: aws.String("ver"), Publish: true,
		ZipFile: zipOf(t, map[string]string{"app.py": pyEcho + "\n# v3\n"})})
	if err != nil || aws.ToString(up3.Version) != "3" || aws.ToString(up3.FunctionArn) != fnARN+":3" {
		t.Errorf("UpdateFunctionCode with Publish: %+v, %v", up3, err)
	}

	// Created and published at once.
	pub, err := c.CreateFunction(ctx, &awslambda.CreateFunctionInput{FunctionName: aws.String("pub"), Runtime: types.RuntimePython312, Publish: true,
		Role: aws.String("r"), Handler: aws.String("app.handler"), Code: &types.FunctionCode{ZipFile: zipOf(t, map[string]string{"app.py": pyEcho})}})
	if err != nil || aws.ToString(pub.Version) != "1" {
		t.Errorf("CreateFunction with Publish: %+v, %v", pub, err)
	}
}
