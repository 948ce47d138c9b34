# One persisted server that elects itself: the smallest durable deployment.
#   meridian agent -config-file configs/server.hcl -config-dir configs/services
datacenter       = "dc1"
node_name        = "server-1"
data_dir         = "/tmp/meridian-server-1"
server           = true
bootstrap_expect = 1
bind_addr        = "127.0.0.1"
client_addr      = "127.0.0.1"

ports {
  http = 8500
  dns  = 8600
}

dns_config {
  only_passing = false
}
