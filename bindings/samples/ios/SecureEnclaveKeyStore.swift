// Reference implementation of the pushauth `KeyStore` for iOS: the three keys of an
// enrollment in the Secure Enclave. Copy it into the app target AND the Notification
// Service Extension target (the extension only uses `agree`). Not compiled in this
// repository (no Swift toolchain here); written against the foreign trait of protocol v2.
//
// | purpose          | access control                                  | accessible                       | keychain group |
// |------------------|-------------------------------------------------|----------------------------------|----------------|
// | .deviceSigning   | .privateKeyUsage (no user presence)             | AfterFirstUnlockThisDeviceOnly   | app            |
// | .approvalSigning | .privateKeyUsage + .biometryCurrentSet          | WhenPasscodeSetThisDeviceOnly    | app            |
// | .agreement       | .privateKeyUsage (no user presence)             | AfterFirstUnlockThisDeviceOnly   | shared w/ NSE  |
//
// Approval signatures: a NEW LAContext for every signature, with the prompt's summary as
// its localizedReason and no reuse duration; it is invalidated right after. So every
// approval shows Face ID / Touch ID once, and nothing else ever can reuse that match.
// Device-key and agreement-key operations use a context with interactionNotAllowed, so
// they can never show UI (background refresh, Notification Service Extension).
//
// Errors (what the SDK and the app do with them: bindings/README.md):
//   user cancelled / app or system cancel / fallback tapped -> UserCancelled
//   no match (errSecAuthFailed, LAError.authenticationFailed) -> AuthenticationFailed (retry)
//   biometrics added/removed (.biometryCurrentSet), passcode removed, key gone although it
//   was created here -> KeyInvalidated (approve via a migration grant or re-enroll)
//   lockout, no biometry, not interactive -> Unavailable; never created -> NotFound

import Foundation
import LocalAuthentication
import PushAuth
import Security

final class SecureEnclaveKeyStore: KeyStore {
    /// Keychain access group shared with the Notification Service Extension
    /// ("TEAMID.com.example.bank.pushauth", in both targets' keychain-access-groups
    /// entitlement). Holds the agreement key and the key markers of that key.
    private let sharedAccessGroup: String
    /// Group of the device and approval keys; nil = the app's default group. Keep them
    /// out of the shared group: the extension never signs.
    private let privateAccessGroup: String?

    init(sharedAccessGroup: String, privateAccessGroup: String? = nil) {
        self.sharedAccessGroup = sharedAccessGroup
        self.privateAccessGroup = privateAccessGroup
    }

    // MARK: - KeyStore

    func createKey(alias: String, purpose: KeyPurpose) async throws -> Data {
        let group = purpose == .agreement ? sharedAccessGroup : privateAccessGroup
        return try await offMain {
            let publicKey = try Self.createSecureEnclaveKey(alias: alias, purpose: purpose, group: group)
            try Self.writeMarker(alias: alias, group: group)
            return publicKey
        }
    }

    func sign(alias: String, purpose: KeyPurpose, message: Data, prompt: SigningPrompt?) async throws -> Data {
        switch purpose {
        case .deviceSigning:
            let group = privateAccessGroup
            return try await offMain {
                try Self.sign(alias: alias, group: group, message: message, context: Self.silentContext())
            }
        case .approvalSigning:
            guard let prompt = prompt else { throw KeyStoreError.Other(detail: "approval signature without a prompt") }
            let group = privateAccessGroup
            return try await offMain {
                // One fresh context per approval signature: no reuse window, no context
                // kept between calls.
                let context = LAContext()
                context.localizedReason = prompt.summary  // "Approve EUR 49.90 at Example Shop"
                context.localizedFallbackTitle = ""       // biometry only: the key accepts nothing else
                context.touchIDAuthenticationAllowableReuseDuration = 0
                defer { context.invalidate() }
                do {
                    return try Self.sign(alias: alias, group: group, message: message, context: context)
                } catch KeyStoreError.AuthenticationFailed where Self.biometrySetChanged(alias: alias, group: group) {
                    throw KeyStoreError.KeyInvalidated
                }
            }
        case .agreement:
            throw KeyStoreError.Other(detail: "an agreement key does not sign")
        }
    }

    func agree(alias: String, peerPublicKey: Data) async throws -> Data {
        let group = sharedAccessGroup
        return try await offMain {
            let key = try Self.privateKey(alias: alias, group: group, context: Self.silentContext())
            var error: Unmanaged<CFError>?
            let attributes: [String: Any] = [
                kSecAttrKeyType as String: kSecAttrKeyTypeECSECPrimeRandom,
                kSecAttrKeyClass as String: kSecAttrKeyClassPublic,
                kSecAttrKeySizeInBits as String: 256,
            ]
            guard let peer = SecKeyCreateWithData(peerPublicKey as CFData, attributes as CFDictionary, &error) else {
                throw KeyStoreError.Other(detail: "peer key is not a P-256 point")
            }
            guard let shared = SecKeyCopyKeyExchangeResult(key, .ecdhKeyExchangeStandard, peer,
                                                           [:] as CFDictionary, &error) as Data? else {
                throw Self.mapped(error?.takeRetainedValue(), alias: alias, group: group)
            }
            return shared  // the 32-byte x coordinate
        }
    }

    func deleteKey(alias: String) async throws {
        try await offMain {
            // No access group in the query: deletes the key and its marker in every group
            // the app can reach.
            for itemClass in [kSecClassKey, kSecClassGenericPassword] {
                var query: [String: Any] = [kSecClass as String: itemClass]
                if itemClass == kSecClassKey {
                    query[kSecAttrApplicationTag as String] = Data(alias.utf8)
                } else {
                    query[kSecAttrService as String] = Self.markerService
                    query[kSecAttrAccount as String] = alias
                }
                let status = SecItemDelete(query as CFDictionary)
                guard status == errSecSuccess || status == errSecItemNotFound else {
                    throw KeyStoreError.Other(detail: "SecItemDelete failed: \(status)")
                }
            }
        }
    }

    // MARK: - Secure Enclave

    private static func createSecureEnclaveKey(alias: String, purpose: KeyPurpose, group: String?) throws -> Data {
        let flags: SecAccessControlCreateFlags
        let accessible: CFString
        switch purpose {
        case .deviceSigning, .agreement:
            // No user presence: background token refresh, push decryption while locked.
            flags = [.privateKeyUsage]
            accessible = kSecAttrAccessibleAfterFirstUnlockThisDeviceOnly
        case .approvalSigning:
            // Face ID / Touch ID of the biometrics enrolled NOW, for every use; deleted with
            // the passcode.
            flags = [.privateKeyUsage, .biometryCurrentSet]
            accessible = kSecAttrAccessibleWhenPasscodeSetThisDeviceOnly
        }
        var error: Unmanaged<CFError>?
        guard let access = SecAccessControlCreateWithFlags(nil, accessible, flags, &error) else {
            throw KeyStoreError.Unavailable(detail: "SecAccessControlCreateWithFlags failed")
        }
        var privateAttributes: [String: Any] = [
            kSecAttrIsPermanent as String: true,
            kSecAttrApplicationTag as String: Data(alias.utf8),
            kSecAttrAccessControl as String: access,
        ]
        if let group = group { privateAttributes[kSecAttrAccessGroup as String] = group }
        let attributes: [String: Any] = [
            kSecAttrKeyType as String: kSecAttrKeyTypeECSECPrimeRandom,
            kSecAttrKeySizeInBits as String: 256,
            kSecAttrTokenID as String: kSecAttrTokenIDSecureEnclave,
            kSecPrivateKeyAttrs as String: privateAttributes,
        ]
        guard let key = SecKeyCreateRandomKey(attributes as CFDictionary, &error) else {
            // No Secure Enclave (simulator), no passcode (approval key), no biometry enrolled.
            throw KeyStoreError.Unavailable(detail: "Secure Enclave key generation failed: \(error.map { CFErrorGetCode($0.takeRetainedValue()) } ?? 0)")
        }
        guard let publicKey = SecKeyCopyPublicKey(key),
              let sec1 = SecKeyCopyExternalRepresentation(publicKey, &error) as Data? else {
            throw KeyStoreError.Other(detail: "public key export failed")
        }
        return sec1  // 65-byte uncompressed point
    }

    private static func sign(alias: String, group: String?, message: Data, context: LAContext) throws -> Data {
        let key = try privateKey(alias: alias, group: group, context: context)
        var error: Unmanaged<CFError>?
        // X9.62 signatures are DER ECDSA-Sig-Value; the SDK accepts DER. The Secure Enclave
        // hashes (SHA-256) and, for the approval key, shows the biometric prompt here.
        guard let signature = SecKeyCreateSignature(key, .ecdsaSignatureMessageX962SHA256,
                                                    message as CFData, &error) as Data? else {
            throw mapped(error?.takeRetainedValue(), alias: alias, group: group)
        }
        return signature
    }

    /// The key reference, looked up with `context` (a fresh one per approval, a silent one
    /// otherwise): the context is used by the Secure Enclave when the key is used.
    private static func privateKey(alias: String, group: String?, context: LAContext) throws -> SecKey {
        var query: [String: Any] = [
            kSecClass as String: kSecClassKey,
            kSecAttrApplicationTag as String: Data(alias.utf8),
            kSecAttrKeyType as String: kSecAttrKeyTypeECSECPrimeRandom,
            kSecReturnRef as String: true,
            kSecUseAuthenticationContext as String: context,
        ]
        if let group = group { query[kSecAttrAccessGroup as String] = group }
        var item: CFTypeRef?
        let status = SecItemCopyMatching(query as CFDictionary, &item)
        switch status {
        case errSecSuccess:
            guard let item = item, CFGetTypeID(item) == SecKeyGetTypeID() else {
                throw KeyStoreError.Other(detail: "keychain returned no key")
            }
            return item as! SecKey  // swiftlint:disable:this force_cast (type checked above)
        case errSecItemNotFound:
            // Passcode removed (WhenPasscodeSet keys are deleted) or biometrics changed:
            // gone although we created it. Never created here: NotFound.
            throw markerExists(alias: alias, group: group) ? KeyStoreError.KeyInvalidated : KeyStoreError.NotFound
        case errSecUserCanceled:
            throw KeyStoreError.UserCancelled
        case errSecInteractionNotAllowed:
            throw KeyStoreError.Unavailable(detail: "keychain locked (before first unlock)")
        default:
            throw KeyStoreError.Other(detail: "SecItemCopyMatching failed: \(status)")
        }
    }

    private static func silentContext() -> LAContext {
        let context = LAContext()
        context.interactionNotAllowed = true
        return context
    }

    private static func mapped(_ error: CFError?, alias: String, group: String?) -> KeyStoreError {
        guard let error = error else { return .Other(detail: "unknown Security framework error") }
        let code = CFErrorGetCode(error)
        if CFErrorGetDomain(error) as String == LAErrorDomain {
            switch LAError.Code(rawValue: code) {
            case .userCancel?, .appCancel?, .systemCancel?, .userFallback?: return .UserCancelled
            case .authenticationFailed?: return .AuthenticationFailed
            // All biometrics removed or passcode removed: .biometryCurrentSet keys are dead.
            case .biometryNotEnrolled?, .passcodeNotSet?: return .KeyInvalidated
            case .biometryLockout?: return .Unavailable(detail: "biometry locked out: unlock with the passcode first")
            case .biometryNotAvailable?: return .Unavailable(detail: "biometry not available")
            case .notInteractive?: return .Unavailable(detail: "authentication needs the app in the foreground")
            default: return .Other(detail: "LocalAuthentication error \(code)")
            }
        }
        switch OSStatus(code) {
        case errSecUserCanceled: return .UserCancelled
        // A failed match (the user may try again), not an invalidated key.
        case errSecAuthFailed: return .AuthenticationFailed
        case errSecItemNotFound: return markerExists(alias: alias, group: group) ? .KeyInvalidated : .NotFound
        case errSecInteractionNotAllowed: return .Unavailable(detail: "keychain locked")
        default: return .Other(detail: "Security framework error \(code)")
        }
    }

    // MARK: - markers: "this alias was created here" and the biometry set it was made with

    private static let markerService = "pushauth.key-marker"

    /// A generic-password item per key (no secret in it): the biometric domain state at
    /// creation. Tells "invalidated" (marker, no usable key) from "never created".
    private static func writeMarker(alias: String, group: String?) throws {
        var query: [String: Any] = [
            kSecClass as String: kSecClassGenericPassword,
            kSecAttrService as String: markerService,
            kSecAttrAccount as String: alias,
            kSecAttrAccessible as String: kSecAttrAccessibleAfterFirstUnlockThisDeviceOnly,
            kSecValueData as String: biometryDomainState() ?? Data(),
        ]
        if let group = group { query[kSecAttrAccessGroup as String] = group }
        _ = SecItemDelete(query.filter { $0.key != kSecValueData as String && $0.key != kSecAttrAccessible as String } as CFDictionary)
        let status = SecItemAdd(query as CFDictionary, nil)
        guard status == errSecSuccess else { throw KeyStoreError.Other(detail: "marker SecItemAdd failed: \(status)") }
    }

    private static func marker(alias: String, group: String?) -> Data? {
        var query: [String: Any] = [
            kSecClass as String: kSecClassGenericPassword,
            kSecAttrService as String: markerService,
            kSecAttrAccount as String: alias,
            kSecReturnData as String: true,
        ]
        if let group = group { query[kSecAttrAccessGroup as String] = group }
        var item: CFTypeRef?
        guard SecItemCopyMatching(query as CFDictionary, &item) == errSecSuccess else { return nil }
        return item as? Data
    }

    private static func markerExists(alias: String, group: String?) -> Bool {
        marker(alias: alias, group: group) != nil
    }

    /// True when the enrolled biometrics differ from those at key creation: the
    /// .biometryCurrentSet key can then never sign again, whatever the error said.
    private static func biometrySetChanged(alias: String, group: String?) -> Bool {
        guard let created = marker(alias: alias, group: group), !created.isEmpty,
              let now = biometryDomainState() else { return false }
        return created != now
    }

    /// An opaque value that changes when a face or finger is added or removed
    /// (`evaluatedPolicyDomainState`, deprecated in iOS 18 in favour of
    /// `domainState.biometry.stateHash` but still answered; one API is used throughout so
    /// values stay comparable across OS updates).
    private static func biometryDomainState() -> Data? {
        let context = LAContext()
        var error: NSError?
        guard context.canEvaluatePolicy(.deviceOwnerAuthenticationWithBiometrics, error: &error) else { return nil }
        return context.evaluatedPolicyDomainState
    }

    // MARK: - threading

    /// Security framework calls block (the approval signature blocks while Face ID is up):
    /// run them on a global queue, never on the main thread or a Swift concurrency thread.
    private func offMain<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            DispatchQueue.global(qos: .userInitiated).async {
                continuation.resume(with: Result { try work() })
            }
        }
    }
}
