#include "api_client.h"

#include <curl/curl.h>

#include <fstream>
#include <memory>
#include <mutex>
#include <sstream>

namespace vgpu::k8s {

namespace {

constexpr size_t kMaxBody = 4 << 20;  // a pod object is a few KiB; refuse runaway answers

size_t collect(char* p, size_t size, size_t n, void* out) {
  auto* s = static_cast<std::string*>(out);
  if (s->size() + size * n > kMaxBody) return 0;  // makes curl fail the transfer
  s->append(p, size * n);
  return size * n;
}

std::string read_token(const ApiCredentials& c) {
  if (!c.token.empty() || c.token_file.empty()) return c.token;
  std::ifstream in(c.token_file);
  std::stringstream s;
  s << in.rdbuf();
  std::string t = s.str();
  while (!t.empty() && (t.back() == '\n' || t.back() == '\r' || t.back() == ' ')) t.pop_back();
  return t;
}

// A token goes into a header line: one with control characters is not sent
// (the server then answers 401, which names the problem well enough).
std::string header_safe(std::string t) {
  for (char c : t)
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) return "";
  return t;
}

void set_blob(CURL* h, CURLoption opt, const std::string& pem) {
  curl_blob b{const_cast<char*>(pem.data()), pem.size(), CURL_BLOB_COPY};
  curl_easy_setopt(h, opt, &b);
}

std::string short_body(const std::string& body) {
  // The API server answers errors with a Status object: its message says why.
  auto j = nlohmann::json::parse(body, nullptr, false);
  if (j.is_object() && j.contains("message") && j["message"].is_string()) return j["message"].get<std::string>();
  return body.substr(0, 200);
}

}  // namespace

bool valid_object_name(const std::string& s) {
  if (s.empty() || s.size() > 253) return false;
  for (char c : s)
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.')) return false;
  return s != "." && s != "..";
}

ApiClient::ApiClient(ApiCredentials creds, std::chrono::milliseconds timeout)
    : creds_(std::move(creds)), timeout_(timeout) {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

Result<ApiClient::Reply> ApiClient::request(const std::string& method, const std::string& path,
                                            const std::string& body) {
  std::unique_ptr<CURL, void (*)(CURL*)> h(curl_easy_init(), curl_easy_cleanup);
  if (!h) return make_error("cannot initialise libcurl");
  std::string url = creds_.server + path;
  Reply reply;
  char err[CURL_ERROR_SIZE] = {0};
  curl_easy_setopt(h.get(), CURLOPT_URL, url.c_str());
  curl_easy_setopt(h.get(), CURLOPT_ERRORBUFFER, err);
  curl_easy_setopt(h.get(), CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(h.get(), CURLOPT_TIMEOUT_MS, static_cast<long>(timeout_.count()));
  curl_easy_setopt(h.get(), CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(timeout_.count()));
  curl_easy_setopt(h.get(), CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(h.get(), CURLOPT_WRITEFUNCTION, collect);
  curl_easy_setopt(h.get(), CURLOPT_WRITEDATA, &reply.body);
  curl_easy_setopt(h.get(), CURLOPT_CUSTOMREQUEST, method.c_str());
  if (method == "POST") {
    curl_easy_setopt(h.get(), CURLOPT_POSTFIELDS, body.c_str());
    curl_easy_setopt(h.get(), CURLOPT_POSTFIELDSIZE, static_cast<long>(body.size()));
  }
  if (!creds_.ca_pem.empty()) set_blob(h.get(), CURLOPT_CAINFO_BLOB, creds_.ca_pem);
  if (creds_.insecure) {
    curl_easy_setopt(h.get(), CURLOPT_SSL_VERIFYPEER, 0L);
    curl_easy_setopt(h.get(), CURLOPT_SSL_VERIFYHOST, 0L);
  }
  if (!creds_.client_cert_pem.empty()) {
    curl_easy_setopt(h.get(), CURLOPT_SSLCERTTYPE, "PEM");
    set_blob(h.get(), CURLOPT_SSLCERT_BLOB, creds_.client_cert_pem);
    curl_easy_setopt(h.get(), CURLOPT_SSLKEYTYPE, "PEM");
    set_blob(h.get(), CURLOPT_SSLKEY_BLOB, creds_.client_key_pem);
  }
  curl_slist* headers = nullptr;
  headers = curl_slist_append(headers, "Accept: application/json");
  if (method == "POST") headers = curl_slist_append(headers, "Content-Type: application/json");
  if (std::string token = header_safe(read_token(creds_)); !token.empty())
    headers = curl_slist_append(headers, ("Authorization: Bearer " + token).c_str());
  std::unique_ptr<curl_slist, void (*)(curl_slist*)> hold(headers, curl_slist_free_all);
  curl_easy_setopt(h.get(), CURLOPT_HTTPHEADER, headers);
  CURLcode rc = curl_easy_perform(h.get());
  if (rc != CURLE_OK) {
    std::string why = err[0] ? std::string(err) : std::string(curl_easy_strerror(rc));
    bool unreachable = rc == CURLE_COULDNT_CONNECT || rc == CURLE_COULDNT_RESOLVE_HOST ||
                       rc == CURLE_OPERATION_TIMEDOUT || rc == CURLE_SEND_ERROR || rc == CURLE_RECV_ERROR;
    // TLS problems (an unknown CA, a refused client certificate) are not
    // outages: say so, the operator has to fix the credentials.
    return make_error("the API server at " + creds_.server + (unreachable ? " is unreachable: " : ": ") + why);
  }
  curl_easy_getinfo(h.get(), CURLINFO_RESPONSE_CODE, &reply.status);
  return reply;
}

Result<nlohmann::json> ApiClient::get_pod(const std::string& ns, const std::string& name, bool* not_found) {
  if (not_found) *not_found = false;
  if (!valid_object_name(ns) || !valid_object_name(name))
    return make_error("'" + ns + "/" + name + "' is not a valid pod name");
  auto r = request("GET", "/api/v1/namespaces/" + ns + "/pods/" + name, "");
  if (!r) return Error{r.error()};
  if (r->status == 404 && not_found) *not_found = true;
  if (r->status != 200)
    return make_error("the API server refused to read pod " + ns + "/" + name + " (HTTP " +
                      std::to_string(r->status) + "): " + short_body(r->body));
  auto j = nlohmann::json::parse(r->body, nullptr, false);
  if (!j.is_object()) return make_error("the API server's answer for pod " + ns + "/" + name + " is not a JSON object");
  return j;
}

Result<bool> ApiClient::create_event(const std::string& ns, const nlohmann::json& event) {
  if (!valid_object_name(ns)) return make_error("'" + ns + "' is not a valid namespace");
  auto r = request("POST", "/api/v1/namespaces/" + ns + "/events", event.dump());
  if (!r) return Error{r.error()};
  if (r->status != 200 && r->status != 201)
    return make_error("the API server refused the event (HTTP " + std::to_string(r->status) +
                      "): " + short_body(r->body));
  return true;
}

}  // namespace vgpu::k8s
