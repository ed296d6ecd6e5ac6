#include "daemon/schedule/units.h"

#include <gtest/gtest.h>

#include "daemon/net/listen_address.h"

namespace polar {
namespace {

TEST(ParseDuration, AcceptsUnitsAndCompoundForms) {
  std::string why;
  EXPECT_EQ(ParseDuration("250ms", &why), std::chrono::milliseconds(250));
  EXPECT_EQ(ParseDuration("10s", &why), std::chrono::seconds(10));
  EXPECT_EQ(ParseDuration("5m", &why), std::chrono::minutes(5));
  EXPECT_EQ(ParseDuration("1h30m", &why), std::chrono::minutes(90));
  EXPECT_EQ(ParseDuration("1.5s", &why), std::chrono::milliseconds(1500));
  EXPECT_EQ(ParseDuration("500us", &why), std::chrono::microseconds(500));
  EXPECT_EQ(ParseDuration("0.5ms", &why), std::chrono::microseconds(500));
}

TEST(ParseDuration, RejectsMissingOrUnknownUnitsWithAHint) {
  std::string why;
  EXPECT_FALSE(ParseDuration("10", &why));
  EXPECT_NE(why.find("us, ms, s, m, h or d"), std::string::npos);
  EXPECT_FALSE(ParseDuration("10 parsecs", &why));
  EXPECT_FALSE(ParseDuration("", &why));
  EXPECT_FALSE(ParseDuration("-1s", &why));
}

TEST(ParseRate, ConvertsEveryUnitToPerSecond) {
  std::string why;
  EXPECT_DOUBLE_EQ(*ParseRate("2/s", &why), 2.0);
  EXPECT_DOUBLE_EQ(*ParseRate("120/min", &why), 2.0);
  EXPECT_DOUBLE_EQ(*ParseRate("7200/h", &why), 2.0);
  EXPECT_DOUBLE_EQ(*ParseRate("0.5/s", &why), 0.5);
  EXPECT_DOUBLE_EQ(*ParseRate("0/s", &why), 0.0);
}

TEST(ParseRate, RejectsRatesWithoutAUnitOrWithANegativeCount) {
  std::string why;
  EXPECT_FALSE(ParseRate("5", &why));
  EXPECT_NE(why.find("N/s"), std::string::npos);
  EXPECT_FALSE(ParseRate("-5/s", &why));
  EXPECT_FALSE(ParseRate("5/fortnight", &why));
}

TEST(ParseListenAddress, ParsesIpv4AndBracketedIpv6) {
  std::string why;
  auto v4 = ParseListenAddress("127.0.0.1:9477", &why);
  ASSERT_TRUE(v4);
  EXPECT_EQ(v4->host, "127.0.0.1");
  EXPECT_EQ(v4->port, 9477);
  EXPECT_TRUE(v4->IsLoopback());
  auto v6 = ParseListenAddress("[::1]:0", &why);
  ASSERT_TRUE(v6);
  EXPECT_TRUE(v6->ipv6);
  EXPECT_EQ(v6->ToString(), "[::1]:0");
}

TEST(ParseListenAddress, RejectsHostnamesAndBadPorts) {
  std::string why;
  EXPECT_FALSE(ParseListenAddress("localhost:9477", &why));
  EXPECT_FALSE(ParseListenAddress("127.0.0.1:70000", &why));
  EXPECT_FALSE(ParseListenAddress("127.0.0.1", &why));
}

}  // namespace
}  // namespace polar
