// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {HubFixture} from "./utils/HubFixture.sol";
import {OracleHub} from "../src/OracleHub.sol";
import {IOracleHub} from "../src/IOracleHub.sol";

/// @notice Unit tests: every revert path, every skip reason, every event, reads and history.
contract OracleHubTest is HubFixture {
    /// @dev The `update` word of PriceUpdated (see IOracleHub).
    function _update(uint32 round, int128 price, uint32 observedAt) internal pure returns (uint256) {
        return (uint256(round) << 224) | (uint256(observedAt) << 192) | uint256(uint128(price));
    }

    // ================================================================ submit: happy paths

    function test_SubmitStoresValueAndEmits() public {
        IOracleHub.Report[] memory reports = _one(BTC_I, 1, 97_123_40000000, _now());
        IOracleHub.Signature[] memory sigs = _sign(reports, _quorum());
        vm.expectEmit(true, false, false, true, address(hub));
        emit IOracleHub.PriceUpdated(BTC_I, _update(1, 97_123_40000000, _now()));
        vm.prank(address(0xBEEF)); // any account may relay
        hub.submit(reports, sigs);

        (int128 price, uint8 decimals, uint32 round, uint32 observedAt, uint32 updatedAt) = hub.latest(BTC);
        vm.assertEq(int256(price), 97_123_40000000);
        vm.assertEq(uint256(decimals), 8);
        vm.assertEq(uint256(round), 1);
        vm.assertEq(uint256(observedAt), uint256(_now()));
        vm.assertEq(uint256(updatedAt), block.timestamp);
    }

    function test_BatchUpdatesSeveralFeeds() public {
        IOracleHub.Report[] memory reports = new IOracleHub.Report[](2);
        reports[0] = IOracleHub.Report({feedIndex: BTC_I, roundId: 1, price: 100_000e8, observedAt: _now()});
        reports[1] = IOracleHub.Report({feedIndex: ETH_I, roundId: 7, price: 3_000e8, observedAt: _now()});
        _submit(reports);
        vm.assertEq(_price(BTC), 100_000e8);
        vm.assertEq(_price(ETH), 3_000e8);
        vm.assertEq(_round(BTC), 1);
        vm.assertEq(_round(ETH), 7);
    }

    function test_SameFeedTwiceInOneBatchAppliesInOrder() public {
        IOracleHub.Report[] memory reports = new IOracleHub.Report[](2);
        reports[0] = IOracleHub.Report({feedIndex: BTC_I, roundId: 1, price: 100_000e8, observedAt: _now()});
        reports[1] = IOracleHub.Report({feedIndex: BTC_I, roundId: 2, price: 100_001e8, observedAt: _now()});
        _submit(reports);
        vm.assertEq(_round(BTC), 2);
        vm.assertEq(_price(BTC), 100_001e8);
        (int128 first,,) = hub.getRoundData(BTC, 1);
        vm.assertEq(int256(first), 100_000e8);
    }

    function test_AllThreeSignersAccepted() public {
        IOracleHub.Report[] memory reports = _one(BTC_I, 1, 100_000e8, _now());
        hub.submit(reports, _sign(reports, _all()));
        vm.assertEq(_round(BTC), 1);
    }

    function test_DigestBindsChainAndContract() public {
        IOracleHub.Report[] memory reports = _one(BTC_I, 1, 100_000e8, _now());
        OracleHub other = new OracleHub(OWNER, signers, 2, SKEW);
        vm.assertTrue(other.batchDigest(reports) != hub.batchDigest(reports));
        // The same report at another index is another digest.
        vm.assertTrue(hub.batchDigest(_one(ETH_I, 1, 100_000e8, _now())) != hub.batchDigest(reports));
    }

    // ================================================================ submit: batch-level reverts

    function test_RevertIf_EmptyBatch() public {
        IOracleHub.Report[] memory reports = new IOracleHub.Report[](0);
        IOracleHub.Signature[] memory sigs = _sign(reports, _quorum());
        vm.expectRevert(IOracleHub.EmptyBatch.selector);
        hub.submit(reports, sigs);
    }

    function test_RevertIf_HubPaused() public {
        vm.prank(OWNER);
        hub.setPaused(true);
        IOracleHub.Report[] memory reports = _one(BTC_I, 1, 100_000e8, _now());
        IOracleHub.Signature[] memory sigs = _sign(reports, _quorum());
        vm.expectRevert(IOracleHub.HubPaused.selector);
        hub.submit(reports, sigs);
        vm.prank(OWNER);
        hub.setPaused(false);
        hub.submit(reports, sigs);
        vm.assertEq(_round(BTC), 1);
    }

    function test_RevertIf_BelowThreshold() public {
        IOracleHub.Report[] memory reports = _one(BTC_I, 1, 100_000e8, _now());
        uint256[] memory k = new uint256[](1);
        k[0] = keys[0];
        IOracleHub.Signature[] memory sigs = _sign(reports, k);
        vm.expectRevert(abi.encodeWithSelector(IOracleHub.BelowThreshold.selector, 1, 2));
        hub.submit(reports, sigs);
    }

    function test_RevertIf_WrongSigner() public {
        IOracleHub.Report[] memory reports = _one(BTC_I, 1, 100_000e8, _now());
        uint256[] memory k = new uint256[](2);
        address intruder = vm.addr(0xDEAD);
        // Order the two signatures by address, as the contract requires.
        (k[0], k[1]) = intruder < signers[0] ? (uint256(0xDEAD), keys[0]) : (keys[0], uint256(0xDEAD));
        IOracleHub.Signature[] memory sigs = _sign(reports, k);
        vm.expectRevert(abi.encodeWithSelector(IOracleHub.UnauthorizedSigner.selector, intruder));
        hub.submit(reports, sigs);
    }

    function test_RevertIf_DuplicateSigner() public {
        IOracleHub.Report[] memory reports = _one(BTC_I, 1, 100_000e8, _now());
        uint256[] memory k = new uint256[](2);
        k[0] = keys[0];
        k[1] = keys[0];
        IOracleHub.Signature[] memory sigs = _sign(reports, k);
        vm.expectRevert(
            abi.encodeWithSelector(IOracleHub.SignersNotAscending.selector, signers[0], signers[0])
        );
        hub.submit(reports, sigs);
    }

    function test_RevertIf_SignersOutOfOrder() public {
        IOracleHub.Report[] memory reports = _one(BTC_I, 1, 100_000e8, _now());
        uint256[] memory k = new uint256[](2);
        k[0] = keys[1];
        k[1] = keys[0];
        IOracleHub.Signature[] memory sigs = _sign(reports, k);
        vm.expectRevert(
            abi.encodeWithSelector(IOracleHub.SignersNotAscending.selector, signers[1], signers[0])
        );
        hub.submit(reports, sigs);
    }

    function test_RevertIf_HighS() public {
        IOracleHub.Report[] memory reports = _one(BTC_I, 1, 100_000e8, _now());
        IOracleHub.Signature[] memory sigs = _sign(reports, _quorum());
        // The malleable twin (n - s, flipped v) recovers the same signer but must be rejected.
        uint256 n = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141;
        sigs[0].s = bytes32(n - uint256(sigs[0].s));
        sigs[0].v = sigs[0].v == 27 ? 28 : 27;
        vm.expectRevert(abi.encodeWithSelector(IOracleHub.InvalidSignature.selector, 0));
        hub.submit(reports, sigs);
    }

    function test_RevertIf_BadV() public {
        IOracleHub.Report[] memory reports = _one(BTC_I, 1, 100_000e8, _now());
        IOracleHub.Signature[] memory sigs = _sign(reports, _quorum());
        sigs[1].v = 1;
        vm.expectRevert(abi.encodeWithSelector(IOracleHub.InvalidSignature.selector, 1));
        hub.submit(reports, sigs);
    }

    function test_RevertIf_Unrecoverable() public {
        IOracleHub.Report[] memory reports = _one(BTC_I, 1, 100_000e8, _now());
        IOracleHub.Signature[] memory sigs = _sign(reports, _quorum());
        sigs[0].r = bytes32(0);
        vm.expectRevert(abi.encodeWithSelector(IOracleHub.InvalidSignature.selector, 0));
        hub.submit(reports, sigs);
    }

    function test_RevertIf_SignatureOverOtherReport() public {
        IOracleHub.Report[] memory signedReports = _one(BTC_I, 1, 100_000e8, _now());
        IOracleHub.Signature[] memory sigs = _sign(signedReports, _quorum());
        IOracleHub.Report[] memory tampered = _one(BTC_I, 1, 200_000e8, _now());
        // The signatures recover to unrelated addresses; which check fires first depends on them.
        (bool ok,) = address(hub).call(abi.encodeCall(hub.submit, (tampered, sigs)));
        vm.assertFalse(ok);
        vm.assertEq(_round(BTC), 0);
    }

    function test_RevertIf_ReplayOnOtherDeployment() public {
        OracleHub other = new OracleHub(OWNER, signers, 2, SKEW);
        vm.prank(OWNER);
        other.addFeed(BTC, 8, BTC_MIN, BTC_MAX, 3600, "BTC / USD");
        IOracleHub.Report[] memory reports = _one(BTC_I, 1, 100_000e8, _now());
        IOracleHub.Signature[] memory sigs = _sign(reports, _quorum()); // signed for `hub`
        (bool ok,) = address(other).call(abi.encodeCall(other.submit, (reports, sigs)));
        vm.assertFalse(ok);
    }

    // ================================================================ submit: skipped reports

    function _expectSkip(IOracleHub.Report[] memory reports, bytes4 reason) internal {
        IOracleHub.Signature[] memory sigs = _sign(reports, _quorum());
        vm.expectEmit(true, false, false, true, address(hub));
        emit IOracleHub.ReportRejected(reports[0].feedIndex, reports[0].roundId, reason);
        hub.submit(reports, sigs);
    }

    function test_SkipIf_RoundNotIncreasing() public {
        _submit(_one(BTC_I, 5, 100_000e8, _now()));
        _expectSkip(_one(BTC_I, 5, 100_001e8, _now()), IOracleHub.StaleRound.selector);
        _expectSkip(_one(BTC_I, 4, 100_001e8, _now()), IOracleHub.StaleRound.selector);
        vm.assertEq(_round(BTC), 5);
        vm.assertEq(_price(BTC), 100_000e8);
    }

    function test_SkipIf_ReplayOfSameBatch() public {
        IOracleHub.Report[] memory reports = _one(BTC_I, 1, 100_000e8, _now());
        IOracleHub.Signature[] memory sigs = _sign(reports, _quorum());
        hub.submit(reports, sigs);
        vm.expectEmit(true, false, false, true, address(hub));
        emit IOracleHub.ReportRejected(BTC_I, 1, IOracleHub.StaleRound.selector);
        hub.submit(reports, sigs);
    }

    function test_SkipIf_ObservationTooFarInFuture() public {
        _expectSkip(_one(BTC_I, 1, 100_000e8, _now() + SKEW + 1), IOracleHub.ObservationInFuture.selector);
        vm.assertEq(_round(BTC), 0);
    }

    function test_ObservationAtSkewLimitAccepted() public {
        _submit(_one(BTC_I, 1, 100_000e8, _now() + SKEW));
        vm.assertEq(_round(BTC), 1);
    }

    function test_SkipIf_ObservationGoesBackwards() public {
        _submit(_one(BTC_I, 1, 100_000e8, _now()));
        _expectSkip(_one(BTC_I, 2, 100_000e8, _now() - 1), IOracleHub.ObservationTooOld.selector);
        // The same observation time again is allowed (a new round from the same data).
        _submit(_one(BTC_I, 2, 100_000e8, _now()));
        vm.assertEq(_round(BTC), 2);
    }

    function test_SkipIf_UnknownFeedIndex() public {
        _expectSkip(_one(7, 1, 100_000e8, _now()), IOracleHub.UnknownFeedIndex.selector);
    }

    function test_SkipIf_FeedPaused() public {
        vm.prank(OWNER);
        hub.setFeedPaused(BTC, true);
        _expectSkip(_one(BTC_I, 1, 100_000e8, _now()), IOracleHub.FeedPaused.selector);
        vm.prank(OWNER);
        hub.setFeedPaused(BTC, false);
        _submit(_one(BTC_I, 1, 100_000e8, _now()));
        vm.assertEq(_round(BTC), 1);
    }

    function test_SkipIf_OutOfBounds() public {
        _expectSkip(_one(BTC_I, 1, int128(BTC_MIN), _now()), IOracleHub.OutOfBounds.selector);
        _expectSkip(_one(BTC_I, 1, int128(BTC_MIN) - 1, _now()), IOracleHub.OutOfBounds.selector);
        _expectSkip(_one(BTC_I, 1, int128(BTC_MAX), _now()), IOracleHub.OutOfBounds.selector);
        _expectSkip(_one(BTC_I, 1, int128(BTC_MAX) + 1, _now()), IOracleHub.OutOfBounds.selector);
        _expectSkip(_one(BTC_I, 1, 0, _now()), IOracleHub.OutOfBounds.selector);
        _expectSkip(_one(BTC_I, 1, -1, _now()), IOracleHub.OutOfBounds.selector);
        _submit(_one(BTC_I, 1, int128(BTC_MIN) + 1, _now()));
        _submit(_one(BTC_I, 2, int128(BTC_MAX) - 1, _now()));
        vm.assertEq(_price(BTC), BTC_MAX - 1);
    }

    function test_BadReportIsSkippedOthersApply() public {
        IOracleHub.Report[] memory reports = new IOracleHub.Report[](2);
        reports[0] = IOracleHub.Report({feedIndex: BTC_I, roundId: 1, price: 1, observedAt: _now()});
        reports[1] = IOracleHub.Report({feedIndex: ETH_I, roundId: 1, price: 3_000e8, observedAt: _now()});
        IOracleHub.Signature[] memory sigs = _sign(reports, _quorum());
        vm.expectEmit(true, false, false, true, address(hub));
        emit IOracleHub.ReportRejected(BTC_I, 1, IOracleHub.OutOfBounds.selector);
        vm.expectEmit(true, false, false, true, address(hub));
        emit IOracleHub.PriceUpdated(ETH_I, _update(1, 3_000e8, _now()));
        hub.submit(reports, sigs);
        vm.assertEq(_round(BTC), 0);
        vm.assertEq(_round(ETH), 1);
    }

    // ================================================================ history and reads

    function test_HistoryKeepsLast64Rounds() public {
        for (uint32 r = 1; r <= 70; ++r) {
            _submit(_one(BTC_I, r, int128(100_000e8) + int128(uint128(r)), _now()));
        }
        for (uint32 r = 7; r <= 70; ++r) {
            (int128 p,,) = hub.getRoundData(BTC, r);
            vm.assertEq(int256(p), 100_000e8 + int256(uint256(r)));
        }
        vm.expectRevert(abi.encodeWithSelector(IOracleHub.RoundNotAvailable.selector, BTC, 6, 70));
        hub.getRoundData(BTC, 6);
    }

    function test_RevertIf_RoundNeverStored() public {
        _submit(_one(BTC_I, 10, 100_000e8, _now()));
        vm.expectRevert(abi.encodeWithSelector(IOracleHub.RoundNotAvailable.selector, BTC, 9, 10));
        hub.getRoundData(BTC, 9);
        vm.expectRevert(abi.encodeWithSelector(IOracleHub.RoundNotAvailable.selector, BTC, 0, 10));
        hub.getRoundData(BTC, 0);
        vm.expectRevert(abi.encodeWithSelector(IOracleHub.RoundNotAvailable.selector, BTC, 11, 10));
        hub.getRoundData(BTC, 11);
    }

    function test_LatestIsZeroBeforeFirstUpdate() public view {
        (int128 price, uint8 decimals, uint32 round, uint32 observedAt, uint32 updatedAt) = hub.latest(BTC);
        vm.assertEq(int256(price), 0);
        vm.assertEq(uint256(decimals), 8);
        vm.assertEq(uint256(round) + observedAt + updatedAt, 0);
    }

    function test_RevertIf_LatestOfUnknownFeed() public {
        bytes32 sol = keccak256("SOL/USD");
        vm.expectRevert(abi.encodeWithSelector(IOracleHub.UnknownFeed.selector, sol));
        hub.latest(sol);
        vm.expectRevert(abi.encodeWithSelector(IOracleHub.UnknownFeed.selector, sol));
        hub.feedIndex(sol);
        (uint32 round,,,) = hub.latestByIndex(9);
        vm.assertEq(uint256(round), 0);
        vm.expectRevert(abi.encodeWithSelector(IOracleHub.RoundNotAvailable.selector, bytes32(0), 1, 0));
        hub.roundByIndex(9, 1);
    }

    function test_LatestNoOlderThan() public {
        vm.expectRevert(abi.encodeWithSelector(IOracleHub.NoData.selector, BTC));
        hub.latestNoOlderThan(BTC, 100);
        _submit(_one(BTC_I, 1, 100_000e8, _now()));
        uint256 storedAt = block.timestamp;
        vm.warp(storedAt + 100);
        (int128 price,,,,) = hub.latestNoOlderThan(BTC, 100);
        vm.assertEq(int256(price), 100_000e8);
        vm.warp(storedAt + 101);
        vm.expectRevert(abi.encodeWithSelector(IOracleHub.StalePrice.selector, BTC, storedAt, 100));
        hub.latestNoOlderThan(BTC, 100);
    }

    function test_FeedInfo() public view {
        IOracleHub.FeedInfo memory info = hub.feedInfo(BTC);
        vm.assertEq(info.feedId, BTC);
        vm.assertEq(uint256(info.index), 0);
        vm.assertEq(uint256(info.decimals), 8);
        vm.assertEq(info.minPrice, BTC_MIN);
        vm.assertEq(info.maxPrice, BTC_MAX);
        vm.assertEq(uint256(info.heartbeat), 3600);
        vm.assertEq(info.description, "BTC / USD");
        vm.assertFalse(info.paused);
        vm.assertEq(uint256(hub.feedIndex(ETH)), 1);
        vm.assertEq(uint256(hub.feedCount()), 2);
    }

    // ================================================================ feed admin

    function test_AddFeedEmits() public {
        bytes32 sol = keccak256("SOL/USD");
        vm.expectEmit(true, true, false, true, address(hub));
        emit IOracleHub.FeedAdded(sol, 2, 8, 1e8, 100_000e8, 60, "SOL / USD");
        vm.prank(OWNER);
        uint16 index = hub.addFeed(sol, 8, 1e8, 100_000e8, 60, "SOL / USD");
        vm.assertEq(uint256(index), 2);
    }

    function test_RevertIf_NotOwner() public {
        address bad = address(0xBAD);
        bytes memory notOwner = abi.encodeWithSelector(IOracleHub.NotOwner.selector, bad);
        vm.startPrank(bad);
        vm.expectRevert(notOwner);
        hub.addFeed(keccak256("X/Y"), 8, 0, 1e8, 60, "X / Y");
        vm.expectRevert(notOwner);
        hub.setBounds(BTC, 0, 1e8);
        vm.expectRevert(notOwner);
        hub.setFeedPaused(BTC, true);
        vm.expectRevert(notOwner);
        hub.setPaused(true);
        vm.expectRevert(notOwner);
        hub.addSigner(address(0x1234));
        vm.expectRevert(notOwner);
        hub.removeSigner(signers[0]);
        vm.expectRevert(notOwner);
        hub.setThreshold(1);
        vm.expectRevert(notOwner);
        hub.transferOwnership(bad);
        vm.stopPrank();
    }

    function test_RevertIf_FeedAddedTwice() public {
        vm.prank(OWNER);
        vm.expectRevert(abi.encodeWithSelector(IOracleHub.FeedExists.selector, BTC));
        hub.addFeed(BTC, 8, BTC_MIN, BTC_MAX, 3600, "BTC / USD");
    }

    function test_RevertIf_InvalidDecimals() public {
        vm.prank(OWNER);
        vm.expectRevert(abi.encodeWithSelector(IOracleHub.InvalidDecimals.selector, 37));
        hub.addFeed(keccak256("X/Y"), 37, 0, 1e8, 60, "X / Y");
    }

    function test_RevertIf_InvalidBounds() public {
        vm.startPrank(OWNER);
        bytes32 x = keccak256("X/Y");
        vm.expectRevert(abi.encodeWithSelector(IOracleHub.InvalidBounds.selector, -1, 1e8));
        hub.addFeed(x, 8, -1, 1e8, 60, "X / Y");
        vm.expectRevert(abi.encodeWithSelector(IOracleHub.InvalidBounds.selector, 1e8, 1e8));
        hub.addFeed(x, 8, 1e8, 1e8, 60, "X / Y");
        // 123456789 needs more than 16 bits of mantissa.
        vm.expectRevert(abi.encodeWithSelector(IOracleHub.InvalidBounds.selector, 0, 123456789));
        hub.addFeed(x, 8, 0, 123456789, 60, "X / Y");
        vm.expectRevert(abi.encodeWithSelector(IOracleHub.InvalidBounds.selector, 2e8, 1e8));
        hub.setBounds(BTC, 2e8, 1e8);
        vm.stopPrank();
    }

    function test_RevertIf_TooManyFeeds() public {
        // feedCount lives in slot 1 at byte offset 23 (after pendingOwner, threshold, signerCount, paused;
        // see `forge inspect OracleHub storage-layout`).
        bytes32 slot1 = vm.load(address(hub), bytes32(uint256(1)));
        uint256 patched = (uint256(slot1) & ~(uint256(0xFFFF) << 184)) | (uint256(type(uint16).max) << 184);
        vm.store(address(hub), bytes32(uint256(1)), bytes32(patched));
        vm.assertEq(uint256(hub.feedCount()), type(uint16).max);
        vm.prank(OWNER);
        vm.expectRevert(IOracleHub.TooManyFeeds.selector);
        hub.addFeed(keccak256("X/Y"), 8, 0, 1e8, 60, "X / Y");
    }

    function test_SetBoundsAppliesAndEmits() public {
        vm.expectEmit(true, false, false, true, address(hub));
        emit IOracleHub.BoundsSet(BTC, 5e8, 6e8);
        vm.prank(OWNER);
        hub.setBounds(BTC, 5e8, 6e8);
        IOracleHub.FeedInfo memory info = hub.feedInfo(BTC);
        vm.assertEq(info.minPrice, 5e8);
        vm.assertEq(info.maxPrice, 6e8);
        _expectSkip(_one(BTC_I, 1, 100_000e8, _now()), IOracleHub.OutOfBounds.selector);
        _submit(_one(BTC_I, 1, 55e7, _now()));
        vm.assertEq(_price(BTC), 55e7);
        // ETH, in the same config slot, is untouched.
        vm.assertEq(hub.feedInfo(ETH).minPrice, 10e8);
    }

    function test_RevertIf_AdminOnUnknownFeed() public {
        bytes32 x = keccak256("X/Y");
        vm.startPrank(OWNER);
        vm.expectRevert(abi.encodeWithSelector(IOracleHub.UnknownFeed.selector, x));
        hub.setBounds(x, 0, 1e8);
        vm.expectRevert(abi.encodeWithSelector(IOracleHub.UnknownFeed.selector, x));
        hub.setFeedPaused(x, true);
        vm.stopPrank();
    }

    function test_PauseEvents() public {
        vm.startPrank(OWNER);
        vm.expectEmit(true, false, false, true, address(hub));
        emit IOracleHub.FeedPausedSet(ETH, true);
        hub.setFeedPaused(ETH, true);
        vm.expectEmit(false, false, false, true, address(hub));
        emit IOracleHub.HubPausedSet(true);
        hub.setPaused(true);
        vm.stopPrank();
        vm.assertTrue(hub.feedInfo(ETH).paused);
        vm.assertFalse(hub.feedInfo(BTC).paused);
        vm.assertTrue(hub.paused());
    }

    // ================================================================ signers and ownership

    function test_SignerLifecycleEmits() public {
        address s = address(0x5151);
        vm.startPrank(OWNER);
        vm.expectEmit(true, false, false, false, address(hub));
        emit IOracleHub.SignerAdded(s);
        hub.addSigner(s);
        vm.assertTrue(hub.isSigner(s));
        vm.assertEq(uint256(hub.signerCount()), 4);
        vm.expectEmit(false, false, false, true, address(hub));
        emit IOracleHub.ThresholdSet(4);
        hub.setThreshold(4);
        hub.setThreshold(2);
        vm.expectEmit(true, false, false, false, address(hub));
        emit IOracleHub.SignerRemoved(s);
        hub.removeSigner(s);
        vm.stopPrank();
        vm.assertFalse(hub.isSigner(s));
        vm.assertEq(uint256(hub.signerCount()), 3);
    }

    function test_RevertIf_SignerInvalid() public {
        vm.startPrank(OWNER);
        vm.expectRevert(IOracleHub.ZeroAddress.selector);
        hub.addSigner(address(0));
        vm.expectRevert(abi.encodeWithSelector(IOracleHub.SignerExists.selector, signers[0]));
        hub.addSigner(signers[0]);
        vm.expectRevert(abi.encodeWithSelector(IOracleHub.NotASigner.selector, address(0x77)));
        hub.removeSigner(address(0x77));
        hub.setThreshold(3);
        vm.expectRevert(abi.encodeWithSelector(IOracleHub.InvalidThreshold.selector, 3, 2));
        hub.removeSigner(signers[0]);
        vm.stopPrank();
    }

    function test_RevertIf_ThresholdOutOfRange() public {
        vm.startPrank(OWNER);
        vm.expectRevert(abi.encodeWithSelector(IOracleHub.InvalidThreshold.selector, 4, 3));
        hub.setThreshold(4);
        vm.expectRevert(abi.encodeWithSelector(IOracleHub.InvalidThreshold.selector, 0, 3));
        hub.setThreshold(0);
        vm.stopPrank();
    }

    function test_RevertIf_ConstructorArgumentsInvalid() public {
        vm.expectRevert(IOracleHub.ZeroAddress.selector);
        new OracleHub(address(0), signers, 2, SKEW);
        vm.expectRevert(abi.encodeWithSelector(IOracleHub.InvalidThreshold.selector, 4, 3));
        new OracleHub(OWNER, signers, 4, SKEW);
        address[] memory dup = new address[](2);
        dup[0] = signers[0];
        dup[1] = signers[0];
        vm.expectRevert(abi.encodeWithSelector(IOracleHub.SignerExists.selector, signers[0]));
        new OracleHub(OWNER, dup, 1, SKEW);
    }

    function test_RemovedSignerNoLongerCounts() public {
        vm.prank(OWNER);
        hub.removeSigner(signers[1]);
        IOracleHub.Report[] memory reports = _one(BTC_I, 1, 100_000e8, _now());
        IOracleHub.Signature[] memory sigs = _sign(reports, _quorum());
        vm.expectRevert(abi.encodeWithSelector(IOracleHub.UnauthorizedSigner.selector, signers[1]));
        hub.submit(reports, sigs);
    }

    function test_TwoStepOwnershipTransfer() public {
        address next = address(0xB0B0);
        vm.expectEmit(true, true, false, false, address(hub));
        emit IOracleHub.OwnershipTransferStarted(OWNER, next);
        vm.prank(OWNER);
        hub.transferOwnership(next);
        vm.assertEq(hub.owner(), OWNER);
        vm.assertEq(hub.pendingOwner(), next);

        vm.prank(address(0xBAD));
        vm.expectRevert(abi.encodeWithSelector(IOracleHub.NotPendingOwner.selector, address(0xBAD)));
        hub.acceptOwnership();

        vm.expectEmit(true, true, false, false, address(hub));
        emit IOracleHub.OwnershipTransferred(OWNER, next);
        vm.prank(next);
        hub.acceptOwnership();
        vm.assertEq(hub.owner(), next);
        vm.assertEq(hub.pendingOwner(), address(0));

        vm.prank(OWNER);
        vm.expectRevert(abi.encodeWithSelector(IOracleHub.NotOwner.selector, OWNER));
        hub.setPaused(true);
    }

    function test_RevertIf_AcceptWithoutProposal() public {
        vm.prank(address(0));
        vm.expectRevert(abi.encodeWithSelector(IOracleHub.NotPendingOwner.selector, address(0)));
        hub.acceptOwnership();
    }
}
