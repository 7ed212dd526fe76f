// The SDK's HTTP through URLSession (the `HttpTransport` foreign trait), so HTTPS follows
// the app's rules: the system trust store and App Transport Security, the app's own
// pinning (NSPinnedDomains in Info.plist, or a URLSessionDelegate), proxies/VPN per iOS,
// and an App Attest assertion header per request. Pass it in the client options
// (bindings/README.md); without it the SDK uses its built-in client (reqwest + rustls
// with the platform verifier, i.e. the same system trust store).

import CryptoKit
import Foundation
import PushAuth

final class URLSessionTransport: NSObject, HttpTransport, URLSessionTaskDelegate, @unchecked Sendable {
    // @unchecked: the stored properties are immutable after init and URLSession is
    // thread-safe.
    private let maxResponseBytes: Int
    private let extraHeaders: @Sendable (HttpRequest) async throws -> [HttpHeader]
    private var session: URLSession!

    /// - Parameter extraHeaders: headers the app adds to each request, e.g. an App Attest
    ///   assertion over `URLSessionTransport.clientDataHash(request)` (must not replace
    ///   Authorization, which carries the SDK's signed request proof).
    init(configuration: URLSessionConfiguration = .ephemeral,
         maxResponseBytes: Int = 1 << 20,
         extraHeaders: @escaping @Sendable (HttpRequest) async throws -> [HttpHeader] = { _ in [] }) {
        self.maxResponseBytes = maxResponseBytes
        self.extraHeaders = extraHeaders
        super.init()
        configuration.urlCache = nil              // proofs and challenges are never cached
        configuration.httpCookieStorage = nil
        configuration.timeoutIntervalForRequest = 30
        session = URLSession(configuration: configuration, delegate: self, delegateQueue: nil)
    }

    func send(request: HttpRequest) async throws -> HttpResponse {
        guard let url = URL(string: request.url) else { throw TransportError.NoAnswer(detail: "bad URL") }
        var urlRequest = URLRequest(url: url)
        urlRequest.httpMethod = request.method
        for header in request.headers { urlRequest.addValue(header.value, forHTTPHeaderField: header.name) }
        for header in try await extraHeaders(request) {
            precondition(header.name.lowercased() != "authorization", "Authorization belongs to the SDK")
            urlRequest.addValue(header.value, forHTTPHeaderField: header.name)
        }
        if !request.body.isEmpty { urlRequest.httpBody = request.body }

        let (data, response): (Data, URLResponse)
        do {
            (data, response) = try await session.data(for: urlRequest)
        } catch {
            // No URL, header or body in the message: it may end up in logs.
            throw TransportError.NoAnswer(detail: "URLSession error \((error as NSError).code)")
        }
        guard let http = response as? HTTPURLResponse else { throw TransportError.NoAnswer(detail: "not HTTP") }
        guard data.count <= maxResponseBytes else { throw TransportError.NoAnswer(detail: "response too large") }
        let headers = http.allHeaderFields.compactMap { name, value -> HttpHeader? in
            guard let name = name as? String else { return nil }
            return HttpHeader(name: name, value: "\(value)")
        }
        return HttpResponse(status: UInt16(clamping: http.statusCode), headers: headers, body: data)
    }

    /// Redirects are answers, not instructions: a signed request proof binds method and
    /// URL and must not be replayed to another URL.
    func urlSession(_ session: URLSession, task: URLSessionTask,
                    willPerformHTTPRedirection response: HTTPURLResponse,
                    newRequest request: URLRequest) async -> URLRequest? {
        nil
    }

    /// The client data hash for an App Attest assertion bound to this request
    /// (`DCAppAttestService.shared.generateAssertion(keyId, clientDataHash:)`): SHA-256
    /// over method, URL and body; the server recomputes it.
    static func clientDataHash(_ request: HttpRequest) -> Data {
        var hasher = SHA256()
        hasher.update(data: Data(request.method.utf8))
        hasher.update(data: Data([0]))
        hasher.update(data: Data(request.url.utf8))
        hasher.update(data: Data([0]))
        hasher.update(data: request.body)
        return Data(hasher.finalize())
    }
}
