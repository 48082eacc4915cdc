package interop

import (
	"testing"

	"github.com/apache/rocketmq-client-go/v2/admin"
	"github.com/apache/rocketmq-client-go/v2/primitive"
)

// TestClientModuleLinks keeps the official client in this module's build until
// the namesrv interop tests land.
func TestClientModuleLinks(t *testing.T) {
	_ = admin.WithResolver(primitive.NewPassthroughResolver([]string{"127.0.0.1:9876"}))
}
