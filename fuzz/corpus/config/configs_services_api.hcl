service {
  name = "api"
  id   = "api-1"
  port = 9090
  tags = ["v2"]
}
