// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {HubFixture} from "./utils/HubFixture.sol";
import {Vm} from "./utils/Test.sol";
import {IOracleHub} from "../src/IOracleHub.sol";

/// @notice Fuzz tests: random batches against a reference model of the rules, random signer subsets,
///         random rounds and times, random bounds.
contract OracleHubFuzzTest is HubFixture {
    uint256 internal constant FEEDS = 6;
    int256 internal constant MIN = 100e8;
    int256 internal constant MAX = 1_000_000e8;

    // The model of the hub's per-feed state.
    uint32[FEEDS] internal modelRound;
    uint32[FEEDS] internal modelObserved;
    int128[FEEDS] internal modelPrice;

    function setUp() public override {
        super.setUp();
        vm.startPrank(OWNER);
        for (uint256 i = 2; i < FEEDS; ++i) {
            hub.addFeed(keccak256(abi.encodePacked("FUZZ", i)), 8, MIN, MAX, 60, "fuzz");
        }
        hub.setBounds(BTC, MIN, MAX);
        hub.setBounds(ETH, MIN, MAX);
        vm.stopPrank();
    }

    function _feedId(uint256 i) internal pure returns (bytes32) {
        if (i == 0) return BTC;
        if (i == 1) return ETH;
        return keccak256(abi.encodePacked("FUZZ", i));
    }

    /// @dev Whether the model accepts `r`, applying it if so.
    function _modelApply(IOracleHub.Report memory r) internal returns (bool) {
        uint256 i = r.feedIndex;
        if (i >= FEEDS) return false;
        if (r.roundId <= modelRound[i]) return false;
        if (r.observedAt < modelObserved[i]) return false;
        if (r.observedAt > block.timestamp + SKEW) return false;
        if (r.price <= MIN || r.price >= MAX) return false;
        modelRound[i] = r.roundId;
        modelObserved[i] = r.observedAt;
        modelPrice[i] = r.price;
        return true;
    }

    function testFuzz_RandomBatchesFollowTheModel(uint256 seed) public {
        for (uint256 batch = 0; batch < 3; ++batch) {
            seed = uint256(keccak256(abi.encode(seed, batch)));
            uint256 n = 1 + seed % 8;
            IOracleHub.Report[] memory reports = new IOracleHub.Report[](n);
            for (uint256 j = 0; j < n; ++j) {
                uint256 s = uint256(keccak256(abi.encode(seed, j)));
                // Index 0..FEEDS (FEEDS itself is unknown), rounds near the current one (some stale),
                // prices around the bounds, times around now (some too old, some too far ahead).
                uint16 index = uint16(s % (FEEDS + 1));
                uint32 current = index < FEEDS ? modelRound[index] : 0;
                uint32 round = uint32(current + (s >> 8) % 4) + ((s >> 16) % 5 == 0 ? 0 : 1);
                int128 price = int128(int256(bound(s >> 24, uint256(MIN) - 10, uint256(MAX) + 10)));
                if ((s >> 64) % 3 == 0) {
                    price = int128(int256(bound(s >> 72, uint256(MIN) + 1, uint256(MAX) - 1)));
                }
                uint32 at = uint32(block.timestamp - 120 + (s >> 128) % (120 + SKEW + 10));
                reports[j] =
                    IOracleHub.Report({feedIndex: index, roundId: round, price: price, observedAt: at});
            }
            uint256 expectedApplied;
            for (uint256 j = 0; j < n; ++j) {
                if (_modelApply(reports[j])) ++expectedApplied;
            }
            IOracleHub.Signature[] memory sigs = _sign(reports, _quorum());
            vm.recordLogs();
            hub.submit(reports, sigs);
            _assertLogs(n, expectedApplied);
            for (uint256 i = 0; i < FEEDS; ++i) {
                (int128 price,, uint32 round, uint32 observedAt,) = hub.latest(_feedId(i));
                vm.assertEq(uint256(round), uint256(modelRound[i]));
                vm.assertEq(int256(price), int256(modelPrice[i]));
                vm.assertEq(uint256(observedAt), uint256(modelObserved[i]));
            }
            vm.warp(block.timestamp + (seed >> 200) % 30);
        }
    }

    function _assertLogs(uint256 reports, uint256 applied) internal {
        Vm.Log[] memory logs = vm.getRecordedLogs();
        uint256 updated;
        uint256 rejected;
        for (uint256 i = 0; i < logs.length; ++i) {
            if (logs[i].topics[0] == IOracleHub.PriceUpdated.selector) ++updated;
            if (logs[i].topics[0] == IOracleHub.ReportRejected.selector) ++rejected;
        }
        vm.assertEq(updated, applied, "PriceUpdated events");
        vm.assertEq(updated + rejected, reports, "every report is applied or rejected");
    }

    function testFuzz_SignerSubsets(uint8 mask, uint8 threshold) public {
        // Pool: the 3 authorized signers and 2 strangers.
        uint256[5] memory pool = [keys[0], keys[1], keys[2], uint256(0xBAD1), uint256(0xBAD2)];
        threshold = uint8(bound(threshold, 1, 3));
        vm.prank(OWNER);
        hub.setThreshold(threshold);
        uint256 count;
        bool allAuthorized = true;
        for (uint256 i = 0; i < 5; ++i) {
            if (mask & (1 << i) != 0) {
                ++count;
                if (i >= 3) allAuthorized = false;
            }
        }
        uint256[] memory chosen = new uint256[](count);
        uint256 c;
        for (uint256 i = 0; i < 5; ++i) {
            if (mask & (1 << i) != 0) chosen[c++] = pool[i];
        }
        // Sort by signer address, as the contract requires.
        for (uint256 i = 0; i < count; ++i) {
            for (uint256 j = i + 1; j < count; ++j) {
                if (vm.addr(chosen[j]) < vm.addr(chosen[i])) (chosen[i], chosen[j]) = (chosen[j], chosen[i]);
            }
        }
        IOracleHub.Report[] memory reports = _one(BTC_I, 1, 200e8, _now());
        IOracleHub.Signature[] memory sigs = _sign(reports, chosen);
        (bool ok,) = address(hub).call(abi.encodeCall(hub.submit, (reports, sigs)));
        vm.assertEq(ok, allAuthorized && count >= threshold);
        vm.assertEq(_round(BTC), ok ? 1 : 0);
    }

    function testFuzz_RoundsStrictlyIncrease(uint32 first, uint32 second) public {
        first = uint32(bound(first, 1, type(uint32).max));
        _submit(_one(BTC_I, first, 200e8, _now()));
        IOracleHub.Report[] memory b = _one(BTC_I, second, 300e8, _now());
        IOracleHub.Signature[] memory sigs = _sign(b, _quorum());
        if (second <= first) {
            vm.expectEmit(true, false, false, true, address(hub));
            emit IOracleHub.ReportRejected(BTC_I, second, IOracleHub.StaleRound.selector);
        }
        hub.submit(b, sigs);
        vm.assertEq(_round(BTC), second > first ? second : first);
    }

    function testFuzz_ObservationTimeWindow(uint32 stored, int64 delta) public {
        stored = uint32(bound(stored, block.timestamp - 1 days, block.timestamp));
        _submit(_one(BTC_I, 1, 200e8, stored));
        delta = int64(int256(bound(uint256(int256(delta) + 2 days), 0, 4 days)) - 2 days);
        int256 atSigned = int256(uint256(stored)) + delta;
        vm.assume(atSigned > 0 && atSigned < int256(uint256(type(uint32).max)));
        uint32 at = uint32(uint256(atSigned));
        _submit(_one(BTC_I, 2, 300e8, at));
        bool accepted = at >= stored && at <= block.timestamp + SKEW;
        vm.assertEq(_round(BTC), accepted ? 2 : 1);
    }

    function testFuzz_BoundsRoundTripOrRevert(uint256 mantissa, uint8 exponent, uint256 extra) public {
        mantissa = bound(mantissa, 0, 70_000);
        exponent = uint8(bound(exponent, 0, 36));
        int256 minPrice = int256(mantissa * 10 ** exponent);
        int256 maxPrice = minPrice + int256(bound(extra, 1, 1e30));
        bytes32 id = keccak256(abi.encode(mantissa, exponent, extra));
        vm.prank(OWNER);
        try hub.addFeed(id, 8, minPrice, maxPrice, 60, "x") {
            IOracleHub.FeedInfo memory info = hub.feedInfo(id);
            vm.assertEq(info.minPrice, minPrice);
            vm.assertEq(info.maxPrice, maxPrice);
        } catch (bytes memory reason) {
            vm.assertTrue(bytes4(reason) == IOracleHub.InvalidBounds.selector);
            // Rejected only when a bound has no 16-bit mantissa with an exponent up to 33.
            vm.assertFalse(_representable(uint256(minPrice)) && _representable(uint256(maxPrice)));
        }
    }

    function _representable(uint256 v) internal pure returns (bool) {
        uint256 e;
        while (v > 0xFFFF) {
            if (v % 10 != 0) return false;
            v /= 10;
            ++e;
        }
        return e <= 33;
    }
}
