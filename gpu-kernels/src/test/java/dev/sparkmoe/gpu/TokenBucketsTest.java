package dev.sparkmoe.gpu;

import dev.sparkmoe.engine.MoeEngineException;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

class TokenBucketsTest {
    @Test
    void bucketsArePowersOfTwoFromTheMinimum() {
        assertEquals(16, TokenBuckets.bucket(1, 32768));
        assertEquals(16, TokenBuckets.bucket(16, 32768));
        assertEquals(32, TokenBuckets.bucket(17, 32768));
        assertEquals(1024, TokenBuckets.bucket(1000, 32768));
        assertEquals(4096, TokenBuckets.bucket(4096, 32768));
        assertEquals(32768, TokenBuckets.bucket(32767, 32768));
        assertEquals(8, TokenBuckets.bucket(3, 8)); // a small launch limit caps the minimum
    }

    @Test
    void largeCallsSplitIntoFullLaunchesAndARemainder() {
        assertEquals(0, TokenBuckets.launches(0, 4096));
        assertEquals(1, TokenBuckets.launches(4096, 4096));
        assertEquals(3, TokenBuckets.launches(10000, 4096));
        assertEquals(4096, TokenBuckets.launchTokens(10000, 4096, 1));
        assertEquals(10000 - 8192, TokenBuckets.launchTokens(10000, 4096, 2));
    }

    @Test
    void badSettingsAndCountsAreRefused() {
        assertThrows(MoeEngineException.class, () -> TokenBuckets.bucket(1, 1000));
        assertThrows(MoeEngineException.class, () -> TokenBuckets.bucket(0, 1024));
        assertThrows(MoeEngineException.class, () -> TokenBuckets.bucket(2048, 1024));
    }
}
