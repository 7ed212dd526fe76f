// Reference implementation of the pushauth `KeyStore` for Android: both device keys
// in the Android Keystore, in StrongBox when the device has one. Copy it into the app;
// it is not compiled in this repository (it needs the Android SDK, API 31+ for ECDH).
//
// - The signing key requires the user: `setUserAuthenticationRequired(true)` with a
//   short validity window after a strong biometric (so the request proof and the
//   approval proof of one tap need one prompt), and `setInvalidatedByBiometricEnrollment`.
// - The agreement key needs no user, so a FirebaseMessagingService can decrypt pushes.
//
// When the user enrolls a new fingerprint or face, Android permanently invalidates the
// signing key: `sign` throws `KeyStoreException.KeyInvalidated`, the SDK throws
// `PushAuthException.KeyInvalidated`, and the app must delete its stored
// `EnrollmentState` and enroll again with a new activation code.

package com.example.issuer.pushauth

import android.security.keystore.KeyGenParameterSpec
import android.security.keystore.KeyPermanentlyInvalidatedException
import android.security.keystore.KeyProperties
import android.security.keystore.StrongBoxUnavailableException
import android.security.keystore.UserNotAuthenticatedException
import java.security.KeyFactory
import java.security.KeyPairGenerator
import java.security.PrivateKey
import java.security.Signature
import java.security.UnrecoverableKeyException
import java.security.spec.ECGenParameterSpec
import java.security.spec.X509EncodedKeySpec
import javax.crypto.KeyAgreement
import uniffi.pushauth.KeyStore
import uniffi.pushauth.KeyStoreException

/**
 * @param authenticate shows a BiometricPrompt (BIOMETRIC_STRONG, no CryptoObject) on the
 *   main thread and blocks until the user answers; returns false when cancelled. The SDK
 *   calls `sign` on a background thread, so blocking here is fine.
 */
class AndroidKeystoreKeyStore(
    private val authenticate: () -> Boolean,
    private val authValiditySeconds: Int = 10,
) : KeyStore {
    private val keystore = java.security.KeyStore.getInstance("AndroidKeyStore").apply { load(null) }

    override fun createSigningKey(alias: String): ByteArray = generate(alias) { strongBox ->
        KeyGenParameterSpec.Builder(alias, KeyProperties.PURPOSE_SIGN)
            .setAlgorithmParameterSpec(ECGenParameterSpec("secp256r1"))
            .setDigests(KeyProperties.DIGEST_SHA256)
            .setUserAuthenticationRequired(true)
            .setUserAuthenticationParameters(authValiditySeconds, KeyProperties.AUTH_BIOMETRIC_STRONG)
            .setInvalidatedByBiometricEnrollment(true)
            .setIsStrongBoxBacked(strongBox)
            .build()
    }

    override fun createAgreementKey(alias: String): ByteArray = generate(alias) { strongBox ->
        KeyGenParameterSpec.Builder(alias, KeyProperties.PURPOSE_AGREE_KEY)
            .setAlgorithmParameterSpec(ECGenParameterSpec("secp256r1"))
            .setIsStrongBoxBacked(strongBox)
            .build()
    }

    override fun sign(alias: String, message: ByteArray): ByteArray {
        val key = privateKey(alias)
        fun attempt(): ByteArray = Signature.getInstance("SHA256withECDSA").run {
            initSign(key)
            update(message)
            sign() // DER ECDSA-Sig-Value; the SDK normalises it
        }
        return try {
            try {
                attempt()
            } catch (e: UserNotAuthenticatedException) {
                if (!authenticate()) throw KeyStoreException.UserCancelled()
                attempt()
            }
        } catch (e: KeyPermanentlyInvalidatedException) {
            throw KeyStoreException.KeyInvalidated()
        } catch (e: KeyStoreException) {
            throw e
        } catch (e: Exception) {
            throw KeyStoreException.Other("signing failed: ${e.javaClass.simpleName}")
        }
    }

    override fun agree(alias: String, peerPublicKey: ByteArray): ByteArray = try {
        val peer = KeyFactory.getInstance("EC").generatePublic(X509EncodedKeySpec(SPKI_P256_PREFIX + peerPublicKey))
        KeyAgreement.getInstance("ECDH", "AndroidKeyStore").run {
            init(privateKey(alias))
            doPhase(peer, true)
            generateSecret() // the 32-byte x coordinate
        }
    } catch (e: KeyStoreException) {
        throw e
    } catch (e: Exception) {
        throw KeyStoreException.Other("key agreement failed: ${e.javaClass.simpleName}")
    }

    override fun deleteKey(alias: String) {
        if (keystore.containsAlias(alias)) keystore.deleteEntry(alias)
    }

    private fun privateKey(alias: String): PrivateKey = try {
        keystore.getKey(alias, null) as? PrivateKey ?: throw KeyStoreException.NotFound()
    } catch (e: UnrecoverableKeyException) {
        throw KeyStoreException.KeyInvalidated()
    }

    private fun generate(alias: String, spec: (strongBox: Boolean) -> KeyGenParameterSpec): ByteArray {
        val generator = KeyPairGenerator.getInstance(KeyProperties.KEY_ALGORITHM_EC, "AndroidKeyStore")
        val pair = try {
            generator.initialize(spec(true))
            generator.generateKeyPair()
        } catch (e: StrongBoxUnavailableException) {
            generator.initialize(spec(false))
            generator.generateKeyPair()
        }
        return pair.public.encoded // SubjectPublicKeyInfo DER: accepted by the SDK
    }

    private companion object {
        /** DER prefix of a P-256 SubjectPublicKeyInfo before the 65-byte point. */
        val SPKI_P256_PREFIX = byteArrayOf(
            0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86.toByte(), 0x48, 0xce.toByte(), 0x3d, 0x02, 0x01,
            0x06, 0x08, 0x2a, 0x86.toByte(), 0x48, 0xce.toByte(), 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
        )
    }
}
