// Command infra is the Pulumi program that provisions Spine on Azure: the
// network, every store, the Function App and its identity, per stack (dev,
// staging, prod). See README.md for how to preview and deploy it.
package main

import (
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"spine/infra/spine"
)

func main() {
	pulumi.Run(spine.Program)
}
